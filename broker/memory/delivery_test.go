package memory_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/eventmodels"
)

func TestRoundTrip(t *testing.T) {
	b := newBroker(t, memory.Config{})
	r := newRecorder()
	scribbled := make(chan struct{})
	// Group "g" looks at its delivery only after group "scribbler" changed
	// its own: each delivery has its own Headers map.
	subscribe(t, b, broker.Subscription{Topic: "rt", Group: "g"}, func(ctx context.Context, m *broker.Message) error {
		<-scribbled
		return r.handle(ctx, m)
	})
	subscribe(t, b, broker.Subscription{Topic: "rt", Group: "scribbler"}, func(_ context.Context, m *broker.Message) error {
		m.SetHeader("x", "changed")
		m.Key = "changed"
		close(scribbled)
		return nil
	})
	body := []byte{0, 0xff, 'A', 0xc3, 0x28}
	sent := &broker.Message{Topic: "rt", Key: "job-1", Body: body, Headers: broker.Headers{{Key: "x", Value: "ünï ✓"}, {Key: hSeq, Value: "0"}}}
	if err := b.Publish(context.Background(), sent); err != nil {
		t.Fatal(err)
	}
	sent.SetHeader("y", "added after publish") // the broker keeps its own copy
	got := r.waitN(t, 1)[0]
	if got.Topic != "rt" || got.Key != "job-1" || !bytes.Equal(got.Body, body) || got.Header("x") != "ünï ✓" || len(got.Headers) != 2 {
		t.Fatalf("got %+v", got)
	}
	d := got.Delivery
	if d.Attempt != 1 || d.Redelivered || d.Group != "g" || d.Offset != 0 || d.ReceivedAt.IsZero() || d.Partition < 0 {
		t.Fatalf("delivery %+v", d)
	}
}

// TestRetention: with no durable group registered, a partition keeps its
// newest BufferSize messages for groups that come later; an ephemeral
// subscription does not trim them.
func TestRetention(t *testing.T) {
	b := newBroker(t, memory.Config{DefaultPartitions: 1, BufferSize: 5, FailWhenFull: true})
	publish(t, b, "ret", 0, 8, 1)
	live := newRecorder()
	subscribe(t, b, broker.Subscription{Topic: "ret", Ephemeral: true}, live.handle)
	r := newRecorder()
	subscribe(t, b, broker.Subscription{Topic: "ret", Group: "late"}, r.handle)
	set, _ := seqs(t, r.waitN(t, 5))
	wantAll(t, set, 3, 5)
}

func TestPartitioning(t *testing.T) {
	b := newBroker(t, memory.Config{Topics: append(events.PlatformTopics(), broker.TopicSpec{Name: "custom", Partitions: 7}), DefaultPartitions: 3})
	for _, tc := range []struct {
		topic string
		want  int
	}{
		{"custom", 7}, {"other", 3}, {"other.dlq", 3},
		{eventmodels.TopicJobLifecycle, 10}, {eventmodels.TopicNotifications, 5}, {eventmodels.TopicSystemHealth, 3},
	} {
		publish(t, b, tc.topic, 0, 1, 1)
		subscribe(t, b, broker.Subscription{Topic: tc.topic, Group: "count"}, func(context.Context, *broker.Message) error { return nil })
		r, _ := b.Health(context.Background())
		n := 0
		for _, l := range r.Lag {
			if l.Topic == tc.topic {
				n++
			}
		}
		if n != tc.want {
			t.Errorf("topic %q has %d partitions, want %d", tc.topic, n, tc.want)
		}
	}

	// The same key always lands on the same partition, on any broker;
	// empty keys visit every partition.
	partOf := func(b *memory.Backend) map[string]int32 {
		r := newRecorder()
		subscribe(t, b, broker.Subscription{Topic: "keys", Group: "g"}, r.handle)
		for round := range 3 {
			publish(t, b, "keys", round*50, 50, 10)
		}
		publish(t, b, "keys", 150, 6, 0)
		out := map[string]int32{}
		empty := map[int32]bool{}
		for _, m := range r.waitN(t, 156) {
			if m.Key == "" {
				empty[m.Delivery.Partition] = true
				continue
			}
			if p, ok := out[m.Key]; ok && p != m.Delivery.Partition {
				t.Fatalf("key %q on partitions %d and %d", m.Key, p, m.Delivery.Partition)
			}
			out[m.Key] = m.Delivery.Partition
		}
		if len(empty) != 3 {
			t.Fatalf("6 empty-key messages reached %d of 3 partitions: not round-robin", len(empty))
		}
		return out
	}
	first, second := partOf(b), partOf(newBroker(t, memory.Config{DefaultPartitions: 3}))
	for k, p := range first {
		if second[k] != p {
			t.Fatalf("key %q: partition %d on one broker, %d on another", k, p, second[k])
		}
	}
}

func TestPerKeyOrderWithConcurrency(t *testing.T) {
	b := newBroker(t, memory.Config{})
	const keys, per = 20, 100
	r := newRecorder()
	var busy sync.Map
	var overlaps atomic.Int32
	h := func(_ context.Context, m *broker.Message) error {
		v, _ := busy.LoadOrStore(m.Key, new(atomic.Int32))
		n := v.(*atomic.Int32)
		if n.Add(1) > 1 {
			overlaps.Add(1)
		}
		time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond) // random work
		r.add(m)
		n.Add(-1)
		return nil
	}
	subscribe(t, b, broker.Subscription{Topic: "order", Group: "g", Concurrency: 8, MaxInFlight: 64}, h)
	for i := 0; i < keys*per; i += 50 {
		publish(t, b, "order", i, 50, keys)
	}
	ms := r.waitN(t, keys*per)
	if overlaps.Load() > 0 {
		t.Fatalf("a key was handled concurrently %d times", overlaps.Load())
	}
	set, dups := seqs(t, ms)
	wantAll(t, set, 0, keys*per)
	if dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
	assertKeyOrder(t, ms)
}

func TestTwoGroupsEachGetEverything(t *testing.T) {
	b := newBroker(t, memory.Config{})
	r1, r2 := newRecorder(), newRecorder()
	subscribe(t, b, broker.Subscription{Topic: "fan", Group: "g1"}, r1.handle)
	subscribe(t, b, broker.Subscription{Topic: "fan", Group: "g2", Concurrency: 3}, r2.handle)
	publish(t, b, "fan", 0, 500, 10)
	for _, r := range []*recorder{r1, r2} {
		set, dups := seqs(t, r.waitN(t, 500))
		wantAll(t, set, 0, 500)
		if dups != 0 {
			t.Fatalf("%d duplicates", dups)
		}
	}
}

// member tags what each member of a group handled.
func member(r *recorder, id string) broker.Handler {
	return func(_ context.Context, m *broker.Message) error {
		m.SetHeader("member", id)
		r.add(m)
		return nil
	}
}

func TestMembersSplitPartitions(t *testing.T) {
	b := newBroker(t, memory.Config{})
	r := newRecorder()
	subscribe(t, b, broker.Subscription{Topic: "split", Group: "g"}, member(r, "1"))
	subscribe(t, b, broker.Subscription{Topic: "split", Group: "g", Concurrency: 2}, member(r, "2"))
	publish(t, b, "split", 0, 400, 40)
	ms := r.waitN(t, 400)
	set, dups := seqs(t, ms)
	wantAll(t, set, 0, 400)
	if dups != 0 || len(ms) != 400 {
		t.Fatalf("%d duplicates in steady state", dups)
	}
	parts := map[string]map[int32]bool{"1": {}, "2": {}}
	for _, m := range ms {
		parts[m.Header("member")][m.Delivery.Partition] = true
	}
	if len(parts["1"]) != 2 || len(parts["2"]) != 2 {
		t.Fatalf("4 partitions not split 2+2: %v", parts)
	}
	for p := range parts["1"] {
		if parts["2"][p] {
			t.Fatalf("partition %d handled by both members", p)
		}
	}
}

func TestRebalanceWhenMemberLeavesMidStream(t *testing.T) {
	b := newBroker(t, memory.Config{})
	r := newRecorder()
	subscribe(t, b, broker.Subscription{Topic: "reb", Group: "g"}, member(r, "1"))
	leaver := subscribe(t, b, broker.Subscription{Topic: "reb", Group: "g", Concurrency: 4}, member(r, "2"))

	const total = 3000
	published := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		for i := 0; i < total; i += 10 {
			if err := b.Publish(ctx, makeMsgs("reb", i, 10, 30)...); err != nil {
				published <- err
				return
			}
		}
		published <- nil
	}()
	r.waitFor(t, "member 2 at work", func(ms []*broker.Message) bool {
		for _, m := range ms {
			if m.Header("member") == "2" {
				return true
			}
		}
		return false
	})
	if err := leaver.Close(); err != nil {
		t.Fatal(err)
	}
	// A third member joins while the stream goes on.
	subscribe(t, b, broker.Subscription{Topic: "reb", Group: "g"}, member(r, "3"))
	if err := <-published; err != nil {
		t.Fatal(err)
	}
	ms := r.waitFor(t, "every message", func(ms []*broker.Message) bool {
		set := map[string]bool{}
		for _, m := range ms {
			set[m.Header(hSeq)] = true
		}
		return len(set) == total
	})
	set, _ := seqs(t, ms)
	wantAll(t, set, 0, total)
	assertKeyOrder(t, ms)
}

func TestResubscribeResumesAfterLastCommit(t *testing.T) {
	b := newBroker(t, memory.Config{})
	r := newRecorder()
	c := subscribe(t, b, broker.Subscription{Topic: "resume", Group: "g", Concurrency: 4}, r.handle)
	publish(t, b, "resume", 0, 200, 8)
	r.waitN(t, 200)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	publish(t, b, "resume", 200, 100, 8)
	r2 := newRecorder()
	subscribe(t, b, broker.Subscription{Topic: "resume", Group: "g"}, r2.handle)
	publish(t, b, "resume", 300, 10, 8)
	ms := r2.waitN(t, 110)
	set, dups := seqs(t, ms)
	wantAll(t, set, 200, 110)
	if dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
	for _, m := range ms {
		if m.Delivery.Redelivered {
			t.Fatalf("message %s marked Redelivered though never handed out", m.Header(hSeq))
		}
	}
	assertKeyOrder(t, ms)
}

// TestCommitNeverPassesUnfinished holds the handler of offset k while later
// offsets finish: the committed offset stays at k. After a close whose drain
// bound cuts the slow handler, the group resumes at k, marked Redelivered.
func TestCommitNeverPassesUnfinished(t *testing.T) {
	b := newBroker(t, memory.Config{DefaultPartitions: 1})
	const k = 5
	started := make(chan struct{})
	var after atomic.Int32
	h := func(ctx context.Context, m *broker.Message) error {
		if m.Delivery.Offset == k {
			close(started)
			<-ctx.Done() // never finishes on its own
			return ctx.Err()
		}
		if m.Delivery.Offset > k {
			after.Add(1)
		}
		return nil
	}
	sub := broker.Subscription{Topic: "hold", Group: "g", Concurrency: 4, DrainTimeout: 20 * time.Millisecond,
		OnFailure: broker.OnFailureStop}
	c := subscribe(t, b, sub, h)
	msgs := makeMsgs("hold", 0, 20, 0)
	for i, m := range msgs {
		m.Key = fmt.Sprintf("k%d", i) // distinct keys: offsets k+1… run on other workers
	}
	if err := b.Publish(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	<-started
	eventually(t, "later offsets finished and offsets before k committed", func() bool {
		return after.Load() >= 3 && lagOf(t, b, "g", "hold", 0).Committed == k
	})
	if err := c.Close(); err != nil {
		t.Fatalf("Close after a drain timeout: %v", err)
	}
	if l := lagOf(t, b, "g", "hold", 0); l.Committed != k {
		t.Fatalf("committed %d after close, want %d", l.Committed, k)
	}
	r := newRecorder()
	subscribe(t, b, broker.Subscription{Topic: "hold", Group: "g"}, r.handle)
	ms := r.waitN(t, 20-k)
	if first := ms[0]; first.Delivery.Offset != k || !first.Delivery.Redelivered {
		t.Fatalf("resumed at offset %d (redelivered %v), want %d redelivered", first.Delivery.Offset, first.Delivery.Redelivered, k)
	}
	set, _ := seqs(t, ms)
	wantAll(t, set, k, 20-k)
}

func TestStartNewest(t *testing.T) {
	b := newBroker(t, memory.Config{})
	publish(t, b, "newest", 0, 10, 2)
	g := newGated() // commits nothing until opened
	subscribe(t, b, broker.Subscription{Topic: "newest", Group: "g", StartAt: broker.StartNewest}, g.handle)
	publish(t, b, "newest", 10, 5, 2)
	// Registering a group that starts at the end trimmed what no group
	// needs: a later StartOldest group starts where "g" does.
	old := newRecorder()
	subscribe(t, b, broker.Subscription{Topic: "newest", Group: "old"}, old.handle)
	set, _ := seqs(t, old.waitN(t, 5))
	wantAll(t, set, 10, 5)
	close(g.open)
	set, _ = seqs(t, g.r.waitN(t, 5))
	wantAll(t, set, 10, 5)
}

func TestEphemeral(t *testing.T) {
	b := newBroker(t, memory.Config{DefaultPartitions: 1, BufferSize: 4, FailWhenFull: true})
	publish(t, b, "live", 0, 3, 1)
	r := newRecorder()
	gate := make(chan struct{})
	c := subscribe(t, b, broker.Subscription{Topic: "live", Ephemeral: true, Group: "dash", DrainTimeout: 10 * time.Millisecond},
		func(ctx context.Context, m *broker.Message) error {
			r.add(m)
			select {
			case <-gate:
			case <-ctx.Done():
			}
			return nil
		})
	publish(t, b, "live", 3, 4, 1) // 3 old ones trimmed by the ephemeral group's position; 4 new
	m := r.waitN(t, 1)[0]
	if seqOf(t, m) != 3 {
		t.Fatalf("ephemeral got message %d first, want 3 (only new ones)", seqOf(t, m))
	}
	if len(m.Delivery.Group) < 5 || m.Delivery.Group[:5] != "dash~" {
		t.Fatalf("ephemeral group name %q", m.Delivery.Group)
	}
	// The ephemeral subscription holds the full buffer while active.
	err := b.Publish(context.Background(), makeMsgs("live", 7, 1, 1)...)
	if !errors.Is(err, memory.ErrBufferFull) {
		t.Fatalf("publish to a buffer held by an ephemeral subscriber: %v, want ErrBufferFull", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	close(gate)
	// Gone, it holds nothing: publishing goes on, and no lag is reported.
	publish(t, b, "live", 7, 10, 1)
	rep, _ := b.Health(context.Background())
	if len(rep.Lag) != 0 {
		t.Fatalf("ephemeral group still reported: %+v", rep.Lag)
	}
}

// TestRevokeWaitsForInFlightThenBoundsIt: a member that joins while the
// owner of its partition is inside a handler waits for the handover; the
// owner's DrainTimeout cuts the handler short, the message stays
// uncommitted, and the new owner gets it marked Redelivered. The old
// member keeps running.
func TestRevokeWaitsForInFlightThenBoundsIt(t *testing.T) {
	b := newBroker(t, memory.Config{DefaultPartitions: 2})
	blocked := make(chan struct{})
	var cut atomic.Bool
	a := subscribe(t, b, broker.Subscription{Topic: "rev", Group: "g", DrainTimeout: 20 * time.Millisecond, OnFailure: broker.OnFailureStop},
		func(ctx context.Context, m *broker.Message) error {
			if m.Delivery.Partition != 1 {
				return nil
			}
			close(blocked)
			<-ctx.Done() // only the revoke's drain bound ends this
			cut.Store(true)
			return ctx.Err()
		})
	publish(t, b, "rev", 0, 2, 0) // empty keys: one message per partition
	<-blocked
	r := newRecorder()
	subscribe(t, b, broker.Subscription{Topic: "rev", Group: "g"}, r.handle) // returns after the handover
	if !cut.Load() {
		t.Fatal("Subscribe returned before the old owner let go of the partition")
	}
	m := r.waitN(t, 1)[0]
	if m.Delivery.Partition != 1 || m.Delivery.Offset != 0 || !m.Delivery.Redelivered {
		t.Fatalf("new owner got %+v, want partition 1 offset 0 redelivered", m.Delivery)
	}
	if a.Err() != nil {
		t.Fatalf("the old member stopped: %v", a.Err())
	}
	select {
	case <-a.Done():
		t.Fatal("the old member stopped")
	default:
	}
}
