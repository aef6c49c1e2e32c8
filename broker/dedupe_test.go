package broker

// White-box: the concurrent tests look at MemoryDedupeStore's waiters to
// know that a second delivery is really waiting on the first.

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var errHandler = errors.New("handler failed")

func dedupeMessage(id, group string) *Message {
	m := &Message{Topic: "job-lifecycle", Key: "job-1", Delivery: Delivery{Group: group}}
	if id != "" {
		m.SetHeader(HeaderID, id)
	}
	return m
}

type duplicates struct{ n atomic.Int32 }

func (d *duplicates) OnDuplicate(context.Context, *Message) { d.n.Add(1) }

// acknowledgeDuplicates does what the pipeline does with ErrDuplicate:
// acknowledge the message and tell the hook.
func acknowledgeDuplicates(d *duplicates, h Handler) Handler {
	return func(ctx context.Context, m *Message) error {
		err := h(ctx, m)
		if errors.Is(err, ErrDuplicate) {
			d.OnDuplicate(ctx, m)
			return nil
		}
		return err
	}
}

// counting returns a handler that counts its calls and returns results[i]
// on call i (nil beyond the end).
func counting(results ...error) (Handler, *atomic.Int32) {
	var calls atomic.Int32
	return func(context.Context, *Message) error {
		n := int(calls.Add(1))
		if n <= len(results) {
			return results[n-1]
		}
		return nil
	}, &calls
}

func TestDedupeSequence(t *testing.T) {
	tests := []struct {
		name      string
		results   []error // handler results, per call
		msgs      []*Message
		wantErrs  []error // per delivery
		wantCalls int32
		wantDups  int32
	}{
		{
			name:      "second delivery of a handled message is skipped",
			msgs:      []*Message{dedupeMessage("a", "g"), dedupeMessage("a", "g"), dedupeMessage("a", "g")},
			wantErrs:  []error{nil, nil, nil},
			wantCalls: 1, wantDups: 2,
		},
		{
			name:      "a failed message is handled again",
			results:   []error{errHandler, errHandler},
			msgs:      []*Message{dedupeMessage("a", "g"), dedupeMessage("a", "g"), dedupeMessage("a", "g"), dedupeMessage("a", "g")},
			wantErrs:  []error{errHandler, errHandler, nil, nil},
			wantCalls: 3, wantDups: 1,
		},
		{
			name:      "messages without an ID are never deduplicated",
			msgs:      []*Message{dedupeMessage("", "g"), dedupeMessage("", "g")},
			wantErrs:  []error{nil, nil},
			wantCalls: 2,
		},
		{
			name:      "distinct IDs are distinct",
			msgs:      []*Message{dedupeMessage("a", "g"), dedupeMessage("b", "g")},
			wantErrs:  []error{nil, nil},
			wantCalls: 2,
		},
		{
			name:      "each group handles every message",
			msgs:      []*Message{dedupeMessage("a", "g"), dedupeMessage("a", "h"), dedupeMessage("a", "g")},
			wantErrs:  []error{nil, nil, nil},
			wantCalls: 2, wantDups: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := NewMemoryDedupeStore(16)
			dups := &duplicates{}
			h, calls := counting(tt.results...)
			dh := acknowledgeDuplicates(dups, Dedupe(store)(h))
			for i, m := range tt.msgs {
				if err := dh(context.Background(), m); !errors.Is(err, tt.wantErrs[i]) || (tt.wantErrs[i] == nil) != (err == nil) {
					t.Fatalf("delivery %d: err = %v, want %v", i+1, err, tt.wantErrs[i])
				}
			}
			if calls.Load() != tt.wantCalls || dups.n.Load() != tt.wantDups {
				t.Fatalf("handler calls %d, duplicates %d; want %d, %d", calls.Load(), dups.n.Load(), tt.wantCalls, tt.wantDups)
			}
		})
	}
}

func TestDedupeCustomKey(t *testing.T) {
	store := NewMemoryDedupeStore(4)
	h, calls := counting()
	byKey := Dedupe(store, DedupeKey(func(m *Message) string { return m.Key }))(h)
	a, b := dedupeMessage("id-1", "g"), dedupeMessage("id-2", "g") // same Key
	_ = byKey(context.Background(), a)
	_ = byKey(context.Background(), b)
	if calls.Load() != 1 {
		t.Fatalf("handler calls %d, want 1 (same key)", calls.Load())
	}
	if got := DefaultDedupeKey(a); got != "g|id-1" {
		t.Fatalf("DefaultDedupeKey = %q", got)
	}
}

func TestDedupeNilStore(t *testing.T) {
	h, calls := counting()
	err := Dedupe(nil)(h)(context.Background(), dedupeMessage("a", "g"))
	if err == nil || calls.Load() != 0 {
		t.Fatalf("err %v, calls %d; want an error and no call", err, calls.Load())
	}
}

// failingStore wraps a store and fails the named operations.
type failingStore struct {
	DedupeStore
	claim, commit, release error
	released               atomic.Int32
}

func (s *failingStore) Claim(ctx context.Context, id string) (bool, error) {
	if s.claim != nil {
		return false, s.claim
	}
	return s.DedupeStore.Claim(ctx, id)
}

func (s *failingStore) Commit(ctx context.Context, id string) error {
	if s.commit != nil {
		return s.commit
	}
	return s.DedupeStore.Commit(ctx, id)
}

func (s *failingStore) Release(ctx context.Context, id string) error {
	s.released.Add(1)
	if s.release != nil {
		return s.release
	}
	return s.DedupeStore.Release(ctx, id)
}

func TestDedupeStoreErrorsAreReturned(t *testing.T) {
	errStore := errors.New("store down")
	t.Run("claim", func(t *testing.T) {
		h, calls := counting()
		err := Dedupe(&failingStore{DedupeStore: NewMemoryDedupeStore(4), claim: errStore})(h)(context.Background(), dedupeMessage("a", "g"))
		if !errors.Is(err, errStore) || calls.Load() != 0 {
			t.Fatalf("err %v, calls %d; want the store error, no call", err, calls.Load())
		}
	})
	t.Run("commit", func(t *testing.T) {
		mem := NewMemoryDedupeStore(4)
		s := &failingStore{DedupeStore: mem, commit: errStore}
		h, calls := counting()
		err := Dedupe(s)(h)(context.Background(), dedupeMessage("a", "g"))
		if !errors.Is(err, errStore) || calls.Load() != 1 {
			t.Fatalf("err %v, calls %d; want the store error after one call", err, calls.Load())
		}
		// The claim was released: the redelivery is handled, not stuck.
		if s.released.Load() != 1 || mem.Len() != 0 {
			t.Fatalf("released %d times, store holds %d", s.released.Load(), mem.Len())
		}
	})
	t.Run("release", func(t *testing.T) {
		s := &failingStore{DedupeStore: NewMemoryDedupeStore(4), release: errStore}
		h, _ := counting(errHandler)
		err := Dedupe(s)(h)(context.Background(), dedupeMessage("a", "g"))
		if !errors.Is(err, errStore) || !errors.Is(err, errHandler) {
			t.Fatalf("err %v, want both the handler and the store error", err)
		}
	})
}

// TestDedupeBookkeepingOutlivesCancelledContext: a handler whose ctx ended
// (timeout, shutdown) still gets its claim committed or released.
func TestDedupeBookkeepingOutlivesCancelledContext(t *testing.T) {
	for _, result := range []error{nil, errHandler} {
		store := NewMemoryDedupeStore(4)
		ctx, cancel := context.WithCancel(context.Background())
		h := func(context.Context, *Message) error { cancel(); return result }
		if err := Dedupe(ctxStrictStore{store})(h)(ctx, dedupeMessage("a", "g")); err != result {
			t.Fatalf("err = %v, want %v", err, result)
		}
		mine, err := store.Claim(context.Background(), "g|a")
		if err != nil || mine != (result != nil) {
			t.Fatalf("handler result %v: Claim after = %v, %v; want %v", result, mine, err, result != nil)
		}
	}
}

// TestDedupePanicReleasesClaim: Recover sits outside the handler chain in
// a Pipeline, so a panic passes through Dedupe; the claim must not stay.
func TestDedupePanicReleasesClaim(t *testing.T) {
	store := NewMemoryDedupeStore(4)
	calls := 0
	h := Recover()(Dedupe(store)(func(context.Context, *Message) error {
		calls++
		if calls == 1 {
			panic("bad")
		}
		return nil
	}))
	var pe *PanicError
	if err := h(context.Background(), dedupeMessage("a", "g")); !errors.As(err, &pe) {
		t.Fatalf("err = %v, want a *PanicError", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := h(ctx, dedupeMessage("a", "g")); err != nil || calls != 2 {
		t.Fatalf("redelivery: err %v, calls %d; want it handled", err, calls)
	}
}

// ctxStrictStore fails Commit and Release called with an ended ctx, as a
// remote store would.
type ctxStrictStore struct{ DedupeStore }

func (s ctxStrictStore) Commit(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.DedupeStore.Commit(ctx, id)
}

func (s ctxStrictStore) Release(ctx context.Context, id string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.DedupeStore.Release(ctx, id)
}

// waitForWaiters spins until n Claim calls wait on id's claim.
func waitForWaiters(t *testing.T, s *MemoryDedupeStore, id string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s.mu.Lock()
		e := s.ids[id]
		got := 0
		if e != nil {
			got = e.waiters
		}
		s.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d waiters on %q, want %d", got, id, n)
		}
		runtime.Gosched()
	}
}

// TestDedupeConcurrentDuplicate: a second delivery of an ID being handled
// waits for the first; it is skipped if the first succeeded and handled if
// the first failed.
func TestDedupeConcurrentDuplicate(t *testing.T) {
	for _, first := range []error{nil, errHandler} {
		t.Run(fmt.Sprintf("first returns %v", first), func(t *testing.T) {
			store := NewMemoryDedupeStore(4)
			dups := &duplicates{}
			entered, release := make(chan struct{}), make(chan struct{})
			var calls atomic.Int32
			h := acknowledgeDuplicates(dups, Dedupe(store)(func(context.Context, *Message) error {
				if calls.Add(1) == 1 {
					close(entered)
					<-release
					return first
				}
				return nil
			}))
			errs1, errs2 := make(chan error, 1), make(chan error, 1)
			go func() { errs1 <- h(context.Background(), dedupeMessage("a", "g")) }()
			<-entered
			go func() { errs2 <- h(context.Background(), dedupeMessage("a", "g")) }()
			waitForWaiters(t, store, "g|a", 1)
			if calls.Load() != 1 {
				t.Fatal("the duplicate ran while the first was in flight")
			}
			close(release)
			e1, e2 := <-errs1, <-errs2
			if first == nil {
				if e1 != nil || e2 != nil || calls.Load() != 1 || dups.n.Load() != 1 {
					t.Fatalf("errs %v %v, calls %d, dups %d; want nil, nil, 1, 1", e1, e2, calls.Load(), dups.n.Load())
				}
				return
			}
			if !errors.Is(e1, errHandler) || e2 != nil || calls.Load() != 2 || dups.n.Load() != 0 {
				t.Fatalf("errs %v %v, calls %d, dups %d; want the failure, nil, 2, 0", e1, e2, calls.Load(), dups.n.Load())
			}
		})
	}
}

func TestMemoryDedupeStoreClaimHonoursContext(t *testing.T) {
	s := NewMemoryDedupeStore(4)
	ctx := context.Background()
	if mine, _ := s.Claim(ctx, "a"); !mine {
		t.Fatal("first claim refused")
	}
	wctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { _, err := s.Claim(wctx, "a"); done <- err }()
	waitForWaiters(t, s, "a", 1)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	waitForWaiters(t, s, "a", 0)
	_ = s.Release(ctx, "a")
	if mine, err := s.Claim(ctx, "a"); !mine || err != nil {
		t.Fatalf("claim after release = %v, %v", mine, err)
	}
}

func TestMemoryDedupeStoreWindow(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryDedupeStore(3)
	for _, id := range []string{"a", "b", "c", "d"} {
		if mine, _ := s.Claim(ctx, id); !mine {
			t.Fatalf("claim %s refused", id)
		}
		_ = s.Commit(ctx, id)
	}
	if s.Len() != 3 {
		t.Fatalf("Len = %d, want the window, 3", s.Len())
	}
	for id, dup := range map[string]bool{"b": true, "c": true, "d": true} {
		if mine, _ := s.Claim(ctx, id); mine == dup {
			t.Fatalf("%s: claimed %v, want remembered", id, mine)
		}
	}
	if mine, _ := s.Claim(ctx, "a"); !mine {
		t.Fatal("a is remembered beyond the window")
	}
	if s.Len() != 4 { // three committed, one claim in progress
		t.Fatalf("Len = %d, want 4", s.Len())
	}
	_ = s.Commit(ctx, "a") // evicts b
	if mine, _ := s.Claim(ctx, "b"); !mine {
		t.Fatal("b survived its eviction")
	}
}

func TestMemoryDedupeStoreEdges(t *testing.T) {
	ctx := context.Background()
	s := NewMemoryDedupeStore(0)
	if len(s.ring) != DefaultDedupeWindow {
		t.Fatalf("window %d, want the default", len(s.ring))
	}
	_ = s.Release(ctx, "never claimed") // no-op
	_ = s.Commit(ctx, "x")              // without a claim: recorded
	_ = s.Commit(ctx, "x")              // twice: no-op
	if s.Len() != 1 || s.next != 1 {
		t.Fatalf("Len %d, ring position %d; want 1, 1", s.Len(), s.next)
	}
	_ = s.Release(ctx, "x") // a committed ID stays committed
	if mine, _ := s.Claim(ctx, "x"); mine {
		t.Fatal("Release forgot a committed ID")
	}
}

// TestDedupeConcurrentStress delivers every ID from many goroutines at
// once. The handler fails the first time it sees an ID. Each ID must be
// handled successfully exactly once, never by two goroutines at a time.
func TestDedupeConcurrentStress(t *testing.T) {
	const ids, workers = 50, 8
	store := NewMemoryDedupeStore(ids)
	var (
		mu        sync.Mutex
		seen      = map[string]int{}
		successes = map[string]int{}
		inFlight  = map[string]int{}
	)
	h := acknowledgeDuplicates(&duplicates{}, Dedupe(store)(func(_ context.Context, m *Message) error {
		id := m.Header(HeaderID)
		mu.Lock()
		inFlight[id]++
		if inFlight[id] > 1 {
			mu.Unlock()
			panic("two handlers on one ID")
		}
		seen[id]++
		fail := seen[id] == 1
		if !fail {
			successes[id]++
		}
		inFlight[id]--
		mu.Unlock()
		if fail {
			return errHandler
		}
		return nil
	}))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range ids {
				id := fmt.Sprintf("id-%d", (i+w*7)%ids)
				// Redeliver until acknowledged, as a broker would.
				for h(context.Background(), dedupeMessage(id, "g")) != nil {
				}
			}
		})
	}
	wg.Wait()
	for i := range ids {
		id := fmt.Sprintf("id-%d", i)
		if successes[id] != 1 {
			t.Errorf("%s handled successfully %d times, want 1", id, successes[id])
		}
	}
}

// TestDedupeUpperCaseUUID: the same UUID written in upper case (Swift's
// uuidString, SQL Server) is the same event: its redelivery is a duplicate.
func TestDedupeUpperCaseUUID(t *testing.T) {
	store := NewMemoryDedupeStore(4)
	h, calls := counting()
	d := Dedupe(store)(h)
	lower := dedupeMessage("dabc6342-0008-4aa6-8f3e-1b2c3d4e5f60", "g")
	upper := dedupeMessage("DABC6342-0008-4AA6-8F3E-1B2C3D4E5F60", "g")
	if err := d(context.Background(), upper); err != nil {
		t.Fatal(err)
	}
	if err := d(context.Background(), lower); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("lower-case copy of an upper-case ID: err = %v, want ErrDuplicate", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("handler calls %d, want 1", calls.Load())
	}
}

func TestCanonicalID(t *testing.T) {
	for in, want := range map[string]string{
		"DABC6342-0008-4AA6-8F3E-1B2C3D4E5F60": "dabc6342-0008-4aa6-8f3e-1b2c3d4e5f60",
		"dabc6342-0008-4aa6-8f3e-1b2c3d4e5f60": "dabc6342-0008-4aa6-8f3e-1b2c3d4e5f60",
		"Dabc6342-0008-4aA6-8f3e-1b2c3d4e5f60": "dabc6342-0008-4aa6-8f3e-1b2c3d4e5f60",
		"ORDER-1":                              "ORDER-1", // not a UUID: IDs of other shapes are case-sensitive
		"DABC6342X0008-4AA6-8F3E-1B2C3D4E5F60": "DABC6342X0008-4AA6-8F3E-1B2C3D4E5F60",
		"GABC6342-0008-4AA6-8F3E-1B2C3D4E5F60": "GABC6342-0008-4AA6-8F3E-1B2C3D4E5F60",
		"":                                     "",
	} {
		if got := CanonicalID(in); got != want {
			t.Errorf("CanonicalID(%q) = %q, want %q", in, got, want)
		}
	}
}
