package auditsvc_test

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/examples/internal/auditsvc"
	"github.com/cosmic-horizons/events/testkit"
)

// Crash safety: the service is stopped mid-stream without a drain — its
// handlers' contexts are cancelled at once, and the messages in flight,
// some of them already appended and fsynced, are never acknowledged — and
// the crash leaves half a record at the end of the segment. A new instance
// on the same directory and consumer group gets the unacknowledged
// messages again: the trail ends up with every published event exactly
// once, and verifies.
func TestCrashMidStreamThenRestart(t *testing.T) {
	e := newEnv(t)
	evs := platformEvents(7, 12)
	e.publish(t, evs...)

	// First run. After the crashAt-th recorded event, every handler call
	// records its event and then "crashes" before the acknowledgement: it
	// waits for the subscription's stop and returns its ctx's error, so the
	// backend never commits those messages.
	const crashAt = 30
	s1, err := auditsvc.New(auditsvc.Config{Dir: e.dir, Bus: e.bus})
	if err != nil {
		t.Fatal(err)
	}
	var handled atomic.Int64
	crashed := make(chan struct{})
	h := s1.Handler()
	crashing := func(ctx context.Context, m *broker.Message) error {
		if err := h(ctx, m); err != nil {
			return err
		}
		if n := handled.Add(1); n < crashAt {
			return nil
		} else if n == crashAt {
			close(crashed)
		}
		<-ctx.Done() // recorded and fsynced, but never acknowledged
		return ctx.Err()
	}
	ctx, stop := context.WithCancel(context.Background())
	var cs []broker.Consumer
	for _, topic := range s1.Topics() {
		c, err := e.b.Subscribe(ctx, broker.Subscription{
			Topic: topic, Group: "audit", Concurrency: 4,
			DrainTimeout: time.Nanosecond, // no drain: in-flight handlers are cut off at once
		}, crashing)
		if err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	select {
	case <-crashed:
	case <-time.After(timeout):
		t.Fatal("the first run never reached the crash point")
	}
	stop()
	for _, c := range cs {
		select {
		case <-c.Done():
		case <-time.After(timeout):
			t.Fatal("a consumer did not stop")
		}
	}
	// A crash keeps what was fsynced and may lose the rest: every
	// acknowledged record is at or below DurableSeq.
	durable := s1.Stats().DurableSeq
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	first := s1.Consumed()
	if first < crashAt || first >= int64(len(evs)) {
		t.Fatalf("first run recorded %d of %d events; the crash was not mid-stream", first, len(evs))
	}

	// Simulate the power loss: cut the segment after record DurableSeq,
	// and leave a torn write of a record that was never acknowledged —
	// half a line — at its end.
	seg := onlySegment(t, e.dir)
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	_, keep := segmentLine(t, b, int(durable))
	start, end := segmentLine(t, b, 1)
	torn := append(bytes.Clone(b[:keep]), b[start:start+(end-start)/2]...)
	if err := os.WriteFile(seg, torn, 0o640); err != nil {
		t.Fatal(err)
	}

	// Second run: same directory, same group.
	s2 := e.service(t, auditsvc.Config{})
	e.subscribe(t, s2, "audit")
	testkit.Eventually(testkit.TimeoutContext(t, timeout), t, "every event in the trail", func() bool { return s2.Stats().Records == len(evs) })
	testkit.Eventually(testkit.TimeoutContext(t, timeout), t, "the group caught up", func() bool { return lagOf(t, e, "audit") == 0 })

	// Some appends of the first run were cut off by the cancellation while
	// waiting for their fsync: in the trail, but not counted as recorded by
	// either run (the second sees them as duplicates).
	st := s2.Stats()
	t.Logf("first run recorded %d, second run %d and %d duplicates, of %d events", first, st.Recorded, st.Duplicates, len(evs))
	if first+st.Recorded > int64(len(evs)) {
		t.Fatalf("recorded %d + %d, more than the %d events", first, st.Recorded, len(evs))
	}
	if st.Duplicates < 1 {
		t.Fatalf("no duplicate seen: the recorded but unacknowledged messages were not redelivered (%+v)", st)
	}
	rep, err := s2.Verify(context.Background())
	if err != nil || !rep.OK() || rep.Records != len(evs) || rep.TornTail != nil {
		t.Fatalf("Verify = %+v, %v; want intact with %d records", rep, err, len(evs))
	}
	assertExactlyOnce(t, readTrail(t, e.dir), evs)
	if torn, _ := filepath.Glob(seg + ".torn-*"); len(torn) != 1 {
		t.Fatalf("torn tail quarantine files %v, want one", torn)
	}
	if err := auditsvc.VerifyCommand(context.Background(), e.dir, io.Discard); err != nil {
		t.Fatalf("VerifyCommand: %v", err)
	}
}

// lagOf sums the lag of group over every topic.
func lagOf(t *testing.T, e *env, group string) int64 {
	t.Helper()
	rep, err := e.b.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var lag int64
	for _, l := range rep.Lag {
		if l.Group == group {
			lag += l.Lag
		}
	}
	return lag
}
