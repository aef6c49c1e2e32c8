package memory_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// timeout bounds every wait in these tests; nothing sleeps to synchronise.
const timeout = 10 * time.Second

// newBroker returns a backend closed at the end of the test.
func newBroker(t *testing.T, cfg memory.Config) *memory.Backend {
	t.Helper()
	b := mustNew(t, cfg)
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// mustNew returns a backend the caller closes.
func mustNew(tb testing.TB, cfg memory.Config) *memory.Backend {
	tb.Helper()
	b, err := memory.New(context.Background(), cfg)
	if err != nil {
		tb.Fatalf("memory.New: %v", err)
	}
	return b
}

// subscribe subscribes and closes the consumer at the end of the test.
// Retries default to a millisecond so failure paths are quick.
func subscribe(t *testing.T, b *memory.Backend, sub broker.Subscription, h broker.Handler) broker.Consumer {
	t.Helper()
	if sub.Retry.InitialBackoff == 0 {
		sub.Retry.InitialBackoff = time.Millisecond
		sub.Retry.MaxBackoff = 5 * time.Millisecond
	}
	c, err := b.Subscribe(context.Background(), sub, h)
	if err != nil {
		t.Fatalf("Subscribe(%s/%s): %v", sub.Topic, sub.Group, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// recorder captures what a handler received. Safe for concurrent use.
type recorder struct {
	mu      sync.Mutex
	msgs    []*broker.Message
	changed chan struct{}
}

func newRecorder() *recorder { return &recorder{changed: make(chan struct{}, 1)} }

func (r *recorder) add(m *broker.Message) {
	r.mu.Lock()
	r.msgs = append(r.msgs, m.Clone())
	r.mu.Unlock()
	select {
	case r.changed <- struct{}{}:
	default:
	}
}

func (r *recorder) handle(_ context.Context, m *broker.Message) error {
	r.add(m)
	return nil
}

func (r *recorder) all() []*broker.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]*broker.Message(nil), r.msgs...)
}

// waitFor waits until cond holds over what was received, or fails.
func (r *recorder) waitFor(t *testing.T, what string, cond func([]*broker.Message) bool) []*broker.Message {
	t.Helper()
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for {
		ms := r.all()
		if cond(ms) {
			return ms
		}
		select {
		case <-r.changed:
		case <-deadline.C:
			t.Fatalf("timed out waiting for %s; got %d message(s)", what, len(ms))
		}
	}
}

// waitN waits for at least n messages.
func (r *recorder) waitN(t *testing.T, n int) []*broker.Message {
	t.Helper()
	return r.waitFor(t, fmt.Sprintf("%d messages", n), func(ms []*broker.Message) bool { return len(ms) >= n })
}

// seq numbers test messages; kseq numbers them per key.
const (
	hSeq  = "seq"
	hKSeq = "kseq"
)

func seqOf(t *testing.T, m *broker.Message) int {
	t.Helper()
	n, err := strconv.Atoi(m.Header(hSeq))
	if err != nil {
		t.Fatalf("message without %s header: %+v", hSeq, m)
	}
	return n
}

// makeMsgs builds n messages over keys round-robin (keys 0: empty key).
func makeMsgs(topic string, from, n, keys int) []*broker.Message {
	out := make([]*broker.Message, n)
	for i := range out {
		seq := from + i
		key := ""
		if keys > 0 {
			key = fmt.Sprintf("key-%d", seq%keys)
		}
		out[i] = &broker.Message{Topic: topic, Key: key, Body: []byte("body-" + strconv.Itoa(seq)),
			Headers: broker.Headers{{Key: hSeq, Value: strconv.Itoa(seq)}, {Key: hKSeq, Value: strconv.Itoa(seq / max(keys, 1))}, {Key: broker.HeaderType, Value: "test.message"}}}
	}
	return out
}

// publish publishes n messages numbered from `from`, keyed over keys keys.
func publish(t *testing.T, b *memory.Backend, topic string, from, n, keys int) []*broker.Message {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	msgs := makeMsgs(topic, from, n, keys)
	if err := b.Publish(ctx, msgs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	return msgs
}

// seqs returns the set of sequence numbers received and the duplicate count.
func seqs(t *testing.T, ms []*broker.Message) (map[int]bool, int) {
	t.Helper()
	set, dups := make(map[int]bool, len(ms)), 0
	for _, m := range ms {
		s := seqOf(t, m)
		if set[s] {
			dups++
		}
		set[s] = true
	}
	return set, dups
}

// wantAll fails unless set holds exactly from..from+n-1.
func wantAll(t *testing.T, set map[int]bool, from, n int) {
	t.Helper()
	for s := from; s < from+n; s++ {
		if !set[s] {
			t.Fatalf("message %d missing (%d received)", s, len(set))
		}
	}
	if len(set) != n {
		t.Fatalf("received %d distinct messages, want %d", len(set), n)
	}
}

// assertKeyOrder checks each key's messages arrive in publish order; a
// redelivered message may repeat an earlier one, nothing is skipped.
func assertKeyOrder(t *testing.T, ms []*broker.Message) {
	t.Helper()
	last := map[string]int{}
	for _, m := range ms {
		k, _ := strconv.Atoi(m.Header(hKSeq))
		prev, seen := last[m.Key]
		switch {
		case seen && k > prev+1:
			t.Fatalf("key %q: seq %d right after %d: skipped or reordered", m.Key, k, prev)
		case seen && k <= prev && !m.Delivery.Redelivered:
			t.Fatalf("key %q: seq %d after %d without Redelivered", m.Key, k, prev)
		}
		last[m.Key] = k
	}
}

// waitDone waits for a consumer to stop.
func waitDone(t *testing.T, c broker.Consumer) {
	t.Helper()
	select {
	case <-c.Done():
	case <-time.After(timeout):
		t.Fatal("consumer did not stop")
	}
}

// lagOf returns the group's lag report for one partition.
func lagOf(t *testing.T, b *memory.Backend, group, topic string, partition int32) broker.GroupLag {
	t.Helper()
	r, err := b.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range r.Lag {
		if l.Group == group && l.Topic == topic && l.Partition == partition {
			return l
		}
	}
	t.Fatalf("no lag for %s on %s[%d] in %+v", group, topic, partition, r.Lag)
	return broker.GroupLag{}
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond) // polling interval, with a deadline
	}
}
