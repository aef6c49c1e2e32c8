package memory_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
)

// replayAll replays topic into a recorder and fails the test on an error.
func replayAll(t *testing.T, b *memory.Backend, topic string) []*broker.Message {
	t.Helper()
	r := newRecorder()
	if err := b.Replay(context.Background(), topic, r.handle); err != nil {
		t.Fatalf("Replay(%s): %v", topic, err)
	}
	return r.all()
}

// checkReplayed fails unless got is exactly sent, partition by partition
// (each visited once, offsets consecutive from 0), each key in publish
// order, with the contents published and a group-less delivery.
func checkReplayed(t *testing.T, sent, got []*broker.Message) {
	t.Helper()
	if len(got) != len(sent) {
		t.Fatalf("replayed %d messages, want %d", len(got), len(sent))
	}
	set, dups := seqs(t, got)
	if dups != 0 {
		t.Fatalf("%d duplicates in the replay", dups)
	}
	wantAll(t, set, seqOf(t, sent[0]), len(sent))
	bySeq := make(map[int]*broker.Message, len(sent))
	for _, m := range sent {
		bySeq[seqOf(t, m)] = m
	}
	lastKSeq := map[string]int{}
	part, next := int32(-1), int64(0)
	for i, m := range got {
		d := m.Delivery
		switch {
		case d.Partition < part:
			t.Fatalf("message #%d from partition %d after partition %d", i, d.Partition, part)
		case d.Partition > part:
			part, next = d.Partition, 0
		}
		if d.Offset != next {
			t.Fatalf("message #%d at %d@%d, want offset %d", i, d.Partition, d.Offset, next)
		}
		next++
		if d.Group != "" || d.Attempt != 1 || d.Redelivered || d.ReceivedAt.IsZero() {
			t.Fatalf("message #%d delivery %+v, want no group, attempt 1, a receive time", i, d)
		}
		var k int
		if _, err := fmt.Sscan(m.Header(hKSeq), &k); err != nil {
			t.Fatal(err)
		}
		if prev, seen := lastKSeq[m.Key]; seen && k != prev+1 {
			t.Fatalf("key %q: %d right after %d", m.Key, k, prev)
		}
		lastKSeq[m.Key] = k
		want := bySeq[seqOf(t, m)]
		if m.Topic != want.Topic || m.Key != want.Key || !bytes.Equal(m.Body, want.Body) || len(m.Headers) != len(want.Headers) {
			t.Fatalf("message #%d = %+v, published %+v", i, m, want)
		}
	}
}

// TestReplayReturnsEveryMessageInOrder publishes 300 messages over 7 keys
// and replays them twice: exactly those messages each time, partition by
// partition, each key in order. A message published by the handler during
// the replay is not part of it (the ends are taken at the call).
func TestReplayReturnsEveryMessageInOrder(t *testing.T) {
	b := newBroker(t, memory.Config{DefaultPartitions: 4})
	sent := publish(t, b, "rp", 0, 300, 7)
	checkReplayed(t, sent, replayAll(t, b, "rp"))

	r := newRecorder()
	published := false
	err := b.Replay(context.Background(), "rp", func(ctx context.Context, m *broker.Message) error {
		if !published {
			published = true
			if err := b.Publish(ctx, makeMsgs("rp", 300, 7, 7)...); err != nil {
				return err
			}
		}
		return r.handle(ctx, m)
	})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	checkReplayed(t, sent, r.all())
	if got := len(replayAll(t, b, "rp")); got != 307 {
		t.Fatalf("third replay: %d messages, want 307", got)
	}
}

// TestReplayLeavesGroupsAlone: a replay changes no group's committed
// offsets; a group that is behind still gets every message afterwards, and
// a group that is caught up gets only what is published later.
func TestReplayLeavesGroupsAlone(t *testing.T) {
	b := newBroker(t, memory.Config{DefaultPartitions: 3})
	// "late" is registered at the start of the log and then leaves, so the
	// log keeps everything for it.
	if err := subscribe(t, b, broker.Subscription{Topic: "grp", Group: "late"}, newRecorder().handle).Close(); err != nil {
		t.Fatal(err)
	}
	caught := newRecorder()
	subscribe(t, b, broker.Subscription{Topic: "grp", Group: "caught"}, caught.handle)
	sent := publish(t, b, "grp", 0, 200, 5)
	caught.waitN(t, 200)
	for p := int32(0); p < 3; p++ {
		eventually(t, "group caught to commit everything", func() bool { return lagOf(t, b, "caught", "grp", p).Lag == 0 })
	}
	before := map[string]broker.GroupLag{}
	for _, g := range []string{"late", "caught"} {
		for p := int32(0); p < 3; p++ {
			before[fmt.Sprint(g, p)] = lagOf(t, b, g, "grp", p)
		}
	}

	checkReplayed(t, sent, replayAll(t, b, "grp"))

	for _, g := range []string{"late", "caught"} {
		for p := int32(0); p < 3; p++ {
			if got, want := lagOf(t, b, g, "grp", p), before[fmt.Sprint(g, p)]; got != want {
				t.Fatalf("after the replay %s on partition %d is %+v, was %+v", g, p, got, want)
			}
		}
	}
	late := newRecorder()
	subscribe(t, b, broker.Subscription{Topic: "grp", Group: "late"}, late.handle)
	set, dups := seqs(t, late.waitN(t, 200))
	if dups != 0 {
		t.Fatalf("late group got %d duplicates", dups)
	}
	wantAll(t, set, 0, 200)

	// One marker per key: a message of the caught-up group redelivered on a
	// partition would come before that partition's marker.
	publish(t, b, "grp", 200, 5, 5)
	got := caught.waitN(t, 205)
	set, dups = seqs(t, got)
	if dups != 0 || len(got) != 205 {
		t.Fatalf("caught-up group: %d messages, %d duplicates; want the 5 markers only", len(got)-200, dups)
	}
	wantAll(t, set, 0, 205)
}

// TestReplayHoldsWhatItHasNotRead: a group that commits during the replay
// does not trim the messages the replay has yet to hand out.
func TestReplayHoldsWhatItHasNotRead(t *testing.T) {
	b := newBroker(t, memory.Config{DefaultPartitions: 1})
	gate := make(chan struct{})
	g := newRecorder()
	subscribe(t, b, broker.Subscription{Topic: "hold", Group: "g"}, func(ctx context.Context, m *broker.Message) error {
		<-gate
		return g.handle(ctx, m)
	})
	// More than the replay copies out in one lock.
	sent := publish(t, b, "hold", 0, 1000, 1)
	r := newRecorder()
	err := b.Replay(context.Background(), "hold", func(ctx context.Context, m *broker.Message) error {
		if m.Delivery.Offset == 0 {
			close(gate)
			g.waitN(t, 1000)
			eventually(t, "group g to commit everything", func() bool { return lagOf(t, b, "g", "hold", 0).Lag == 0 })
		}
		return r.handle(ctx, m)
	})
	if err != nil {
		t.Fatalf("Replay: %v", err)
	}
	checkReplayed(t, sent, r.all())
	// The replay's hold is gone: the log is trimmed to what g needs.
	if got := replayAll(t, b, "hold"); len(got) != 0 {
		t.Fatalf("replay after g committed everything: %d messages, want 0", len(got))
	}
}

// TestReplayStopsAtHandlerError returns the handler's error, naming the
// message, after exactly the messages up to it; the replay's hold is
// released, so a full partition takes new messages again.
func TestReplayStopsAtHandlerError(t *testing.T) {
	b := newBroker(t, memory.Config{DefaultPartitions: 1, BufferSize: 50, FailWhenFull: true})
	publish(t, b, "herr", 0, 50, 1)
	boom := errors.New("boom")
	calls := 0
	err := b.Replay(context.Background(), "herr", func(_ context.Context, m *broker.Message) error {
		calls++
		if m.Delivery.Offset == 9 {
			return boom
		}
		return nil
	})
	var he *broker.HandlerError
	if !errors.Is(err, boom) || !errors.As(err, &he) || he.Topic != "herr" || he.Partition != 0 || he.Offset != 9 || he.Key != "key-0" {
		t.Fatalf("Replay = %v, want a HandlerError for herr[0]@9 wrapping boom", err)
	}
	if calls != 10 {
		t.Fatalf("handler called %d times, want 10", calls)
	}
	if got := len(replayAll(t, b, "herr")); got != 50 {
		t.Fatalf("replay after the failed one: %d messages, want the 50 retained", got)
	}
	if err := b.Publish(context.Background(), makeMsgs("herr", 50, 1, 1)...); err != nil {
		t.Fatalf("Publish to the full partition after the replays: %v (still held?)", err)
	}
}

// TestReplayStopsWhenCtxEnds: a ctx cancelled by the 5th handler call ends
// the replay right after it with ctx's error; a ctx ended before the call
// hands nothing out.
func TestReplayStopsWhenCtxEnds(t *testing.T) {
	b := newBroker(t, memory.Config{})
	publish(t, b, "cx", 0, 100, 4)
	ctx, cancel := context.WithCancel(context.Background())
	calls := 0
	err := b.Replay(ctx, "cx", func(context.Context, *broker.Message) error {
		calls++
		if calls == 5 {
			cancel()
		}
		return nil
	})
	if !errors.Is(err, context.Canceled) || calls != 5 {
		t.Fatalf("Replay = %v after %d calls, want context.Canceled after 5", err, calls)
	}
	err = b.Replay(ctx, "cx", func(context.Context, *broker.Message) error {
		t.Error("handler called with an ended ctx")
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Replay with an ended ctx = %v, want context.Canceled", err)
	}
}

// TestReplayUnknownTopic replays nothing and does not create the topic.
func TestReplayUnknownTopic(t *testing.T) {
	b := newBroker(t, memory.Config{})
	err := b.Replay(context.Background(), "never-seen", func(context.Context, *broker.Message) error {
		t.Error("handler called for an unknown topic")
		return nil
	})
	if err != nil {
		t.Fatalf("Replay of an unknown topic = %v, want nil", err)
	}
	r, err := b.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range r.Checks {
		if c.Name == "topic never-seen" {
			t.Fatalf("Replay created the topic: %+v", c)
		}
	}
}

// TestReplayBadInput: an empty topic or a nil handler is an invalid call.
func TestReplayBadInput(t *testing.T) {
	b := newBroker(t, memory.Config{})
	nop := func(context.Context, *broker.Message) error { return nil }
	if err := b.Replay(context.Background(), " ", nop); !errors.Is(err, broker.ErrInvalidSubscription) {
		t.Errorf("Replay without a topic = %v, want ErrInvalidSubscription", err)
	}
	if err := b.Replay(context.Background(), "t", nil); !errors.Is(err, broker.ErrInvalidSubscription) {
		t.Errorf("Replay with a nil handler = %v, want ErrInvalidSubscription", err)
	}
}

// TestReplayAndClose: Close during a replay ends it with ErrClosed after
// the message being handled; Replay after Close returns ErrClosed.
func TestReplayAndClose(t *testing.T) {
	b := mustNew(t, memory.Config{})
	publish(t, b, "cl", 0, 20, 2)
	calls := 0
	err := b.Replay(context.Background(), "cl", func(context.Context, *broker.Message) error {
		calls++
		return b.Close() // Close does not wait for replays
	})
	if !errors.Is(err, broker.ErrClosed) || calls != 1 {
		t.Fatalf("Replay interrupted by Close = %v after %d calls, want ErrClosed after 1", err, calls)
	}
	if err := b.Replay(context.Background(), "cl", func(context.Context, *broker.Message) error { return nil }); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Replay after Close = %v, want ErrClosed", err)
	}
}

// ExampleBackend_Replay rebuilds state from a topic's log at start, without
// joining a group.
func ExampleBackend_Replay() {
	ctx := context.Background()
	b, err := memory.New(ctx, memory.Config{})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	_ = b.Publish(ctx,
		&broker.Message{Topic: "job-lifecycle", Key: "job-1", Body: []byte("submitted")},
		&broker.Message{Topic: "job-lifecycle", Key: "job-1", Body: []byte("started")},
	)
	state := map[string]string{}
	err = b.Replay(ctx, "job-lifecycle", func(_ context.Context, m *broker.Message) error {
		state[m.Key] = string(m.Body) // the last event of each job wins
		return nil
	})
	fmt.Println(state, err)
	// Output: map[job-1:started] <nil>
}
