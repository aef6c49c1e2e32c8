package memory_test

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
)

// gated holds every message until open is closed (or its ctx ends).
type gated struct {
	started chan int64
	open    chan struct{}
	r       *recorder
}

func newGated() *gated {
	return &gated{started: make(chan int64, 1024), open: make(chan struct{}), r: newRecorder()}
}

func (g *gated) handle(ctx context.Context, m *broker.Message) error {
	g.started <- m.Delivery.Offset
	select {
	case <-g.open:
	case <-ctx.Done():
		return ctx.Err()
	}
	g.r.add(m)
	return nil
}

func TestBufferFullBlocksPublish(t *testing.T) {
	b := newBroker(t, memory.Config{DefaultPartitions: 1, BufferSize: 4})
	g := newGated()
	subscribe(t, b, broker.Subscription{Topic: "full", Group: "g", MaxInFlight: 1}, g.handle)
	publish(t, b, "full", 0, 4, 1)
	<-g.started // offset 0 in the handler: the group needs all 4

	// Publish honours ctx while it waits for room.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	err := b.Publish(ctx, makeMsgs("full", 4, 1, 1)...)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish into a full buffer = %v, want DeadlineExceeded", err)
	}
	// A waiting Publish completes once the consumer frees room; the
	// messages of the call appended before it waited stay appended.
	done := make(chan error, 1)
	go func() { done <- b.Publish(context.Background(), makeMsgs("full", 4, 3, 1)...) }()
	select {
	case err := <-done:
		t.Fatalf("Publish returned %v while the buffer was full", err)
	case <-time.After(20 * time.Millisecond): // lets a bug show; passing does not depend on it
	}
	close(g.open)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	set, dups := seqs(t, g.r.waitN(t, 7))
	wantAll(t, set, 0, 7)
	if dups != 0 {
		t.Fatalf("%d duplicates", dups)
	}
}

func TestBufferFullFailsFast(t *testing.T) {
	b := newBroker(t, memory.Config{DefaultPartitions: 1, BufferSize: 4, FailWhenFull: true})
	g := newGated()
	subscribe(t, b, broker.Subscription{Topic: "ff", Group: "g", MaxInFlight: 1, DrainTimeout: time.Millisecond}, g.handle)
	publish(t, b, "ff", 0, 2, 1)
	<-g.started
	err := b.Publish(context.Background(), makeMsgs("ff", 2, 4, 1)...)
	var pe *broker.PublishError
	if !errors.Is(err, memory.ErrBufferFull) || !errors.As(err, &pe) {
		t.Fatalf("Publish = %v, want a PublishError matching ErrBufferFull", err)
	}
	if len(pe.Failed) != 2 || pe.Failed[0].Index != 2 {
		t.Fatalf("failed %+v, want messages #2 and #3 (the first two fit)", pe.Failed)
	}
	if l := lagOf(t, b, "g", "ff", 0); l.End != 4 || l.Committed != 0 {
		t.Fatalf("lag %+v, want end 4 committed 0", l)
	}
}

func TestPublishRejectsWholeCall(t *testing.T) {
	b := newBroker(t, memory.Config{MaxMessageBytes: 100, DefaultPartitions: 1})
	ok := &broker.Message{Topic: "v", Key: "k", Body: []byte("fits")}
	for _, tc := range []struct {
		name string
		bad  *broker.Message
		want error
	}{
		{"oversized", &broker.Message{Topic: "v", Key: "k", Body: make([]byte, 90), Headers: broker.Headers{{Key: "h", Value: "0123456789"}}}, broker.ErrMessageTooLarge},
		{"no topic", &broker.Message{Key: "k"}, broker.ErrInvalidMessage},
		{"blank topic", &broker.Message{Topic: "  "}, broker.ErrInvalidMessage},
		{"nil", nil, broker.ErrInvalidMessage},
	} {
		if err := b.Publish(context.Background(), ok, tc.bad); !errors.Is(err, tc.want) {
			t.Errorf("%s: Publish = %v, want %v", tc.name, err, tc.want)
		}
	}
	subscribe(t, b, broker.Subscription{Topic: "v", Group: "g"}, func(context.Context, *broker.Message) error { return nil })
	if l := lagOf(t, b, "g", "v", 0); l.End != 0 {
		t.Fatalf("%d message(s) appended by rejected calls", l.End)
	}
	if err := b.Publish(context.Background(), &broker.Message{Topic: "v", Body: make([]byte, 100)}); err != nil {
		t.Fatalf("a message of exactly the limit: %v", err)
	}
}

func TestClosed(t *testing.T) {
	b := mustNew(t, memory.Config{})
	r := newRecorder()
	c, err := b.Subscribe(context.Background(), broker.Subscription{Topic: "x", Group: "g", Concurrency: 2}, r.handle)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	waitDone(t, c)
	if err := c.Close(); err != nil {
		t.Fatalf("consumer Close after broker Close = %v", err)
	}
	if err := b.Publish(context.Background(), makeMsgs("x", 0, 1, 1)...); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Publish after Close = %v", err)
	}
	if _, err := b.Subscribe(context.Background(), broker.Subscription{Topic: "x", Group: "g"}, r.handle); !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("Subscribe after Close = %v", err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	rep, err := b.Health(context.Background())
	if err != nil || rep.Status != "unhealthy" {
		t.Fatalf("Health after Close = %+v, %v", rep, err)
	}
}

func TestCloseReleasesWaitingPublisher(t *testing.T) {
	b := mustNew(t, memory.Config{DefaultPartitions: 1, BufferSize: 1})
	c, err := b.Subscribe(context.Background(), broker.Subscription{Topic: "w", Group: "g", StartAt: broker.StartNewest}, func(context.Context, *broker.Message) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close() // the durable group stays registered, holding what it has not committed
	publish(t, b, "w", 0, 1, 1)
	done := make(chan error, 1)
	go func() { done <- b.Publish(context.Background(), makeMsgs("w", 1, 1, 1)...) }()
	_ = b.Close()
	if err := <-done; !errors.Is(err, broker.ErrClosed) {
		t.Fatalf("waiting Publish after Close = %v, want ErrClosed", err)
	}
}

func TestOnFailureStop(t *testing.T) {
	for _, conc := range []int{1, 4} {
		t.Run("concurrency "+strconv.Itoa(conc), func(t *testing.T) {
			b := newBroker(t, memory.Config{DefaultPartitions: 1})
			r := newRecorder()
			h := func(ctx context.Context, m *broker.Message) error {
				if m.Header(hSeq) == "3" {
					return errors.New("cannot")
				}
				return r.handle(ctx, m)
			}
			c := subscribe(t, b, broker.Subscription{Topic: "stop", Group: "g", Concurrency: conc, OnFailure: broker.OnFailureStop,
				Retry: broker.RetryPolicy{MaxAttempts: 2}}, h)
			publish(t, b, "stop", 0, 6, 1)
			waitDone(t, c)
			var he *broker.HandlerError
			if err := c.Err(); !errors.As(err, &he) || he.Offset != 3 || he.Attempts != 2 || he.Topic != "stop" || he.Key != "key-0" {
				t.Fatalf("Err() = %#v", c.Err())
			}
			if err := c.Close(); !errors.As(err, &he) {
				t.Fatalf("Close() = %v, want the HandlerError", err)
			}
			if n := len(r.all()); n != 3 {
				t.Fatalf("%d handled before the stop, want 3 (one key: 4 and 5 wait behind 3)", n)
			}
			again := newRecorder()
			subscribe(t, b, broker.Subscription{Topic: "stop", Group: "g"}, again.handle)
			ms := again.waitN(t, 3)
			if seqOf(t, ms[0]) != 3 || !ms[0].Delivery.Redelivered {
				t.Fatalf("resumed at %s (redelivered %v), want 3 redelivered", ms[0].Header(hSeq), ms[0].Delivery.Redelivered)
			}
		})
	}
}

func TestRetriesThenDeadLetter(t *testing.T) {
	b := newBroker(t, memory.Config{})
	dlq := newRecorder()
	subscribe(t, b, broker.Subscription{Topic: broker.DeadLetterTopic("work"), Group: "dlq"}, dlq.handle)
	ok := newRecorder()
	var calls atomic.Int32
	h := func(ctx context.Context, m *broker.Message) error {
		if m.Header(hSeq) == "2" {
			calls.Add(1)
			return errors.New("poison")
		}
		return ok.handle(ctx, m)
	}
	subscribe(t, b, broker.Subscription{Topic: "work", Group: "g", Retry: broker.RetryPolicy{MaxAttempts: 3}}, h)
	publish(t, b, "work", 0, 6, 1)
	ok.waitN(t, 5) // consumption goes on past the poison message
	dl := dlq.waitN(t, 1)[0]
	for k, v := range map[string]string{
		broker.HeaderDLQError: "poison", broker.HeaderDLQAttempts: "3", broker.HeaderDLQTopic: "work",
		broker.HeaderDLQGroup: "g", broker.HeaderDLQOffset: "2", hSeq: "2",
	} {
		if dl.Header(k) != v {
			t.Errorf("dead letter %s = %q, want %q", k, dl.Header(k), v)
		}
	}
	if dl.Header(broker.HeaderDLQTime) == "" || dl.Header(broker.HeaderDLQPartition) == "" || dl.Key != "key-0" {
		t.Errorf("dead letter %+v", dl)
	}
	if calls.Load() != 3 {
		t.Errorf("poison handled %d times, want 3", calls.Load())
	}
	for i, m := range ok.all() {
		if want := []int{0, 1, 3, 4, 5}[i]; seqOf(t, m) != want {
			t.Fatalf("handled #%d is %d, want %d: order lost around the dead letter", i, seqOf(t, m), want)
		}
	}
}

func TestHandlerPanicIsSurvived(t *testing.T) {
	b := newBroker(t, memory.Config{})
	dlq := newRecorder()
	subscribe(t, b, broker.Subscription{Topic: "boom.dlq", Group: "dlq"}, dlq.handle)
	var oks []*recorder
	for _, conc := range []int{1, 3} {
		ok := newRecorder()
		h := func(ctx context.Context, m *broker.Message) error {
			if m.Header(hSeq) == "1" {
				panic("boom")
			}
			return ok.handle(ctx, m)
		}
		subscribe(t, b, broker.Subscription{Topic: "boom", Group: "g" + strconv.Itoa(conc), Concurrency: conc, Retry: broker.RetryPolicy{MaxAttempts: 1}}, h)
		oks = append(oks, ok)
	}
	publish(t, b, "boom", 0, 4, 2)
	for _, ok := range oks {
		ok.waitN(t, 3)
	}
	for _, dl := range dlq.waitN(t, 2) {
		if dl.Header(hSeq) != "1" || dl.Header(broker.HeaderDLQError) != "broker: handler panic: boom" {
			t.Fatalf("dead letter %+v", dl.Headers)
		}
	}
}

func TestHealthReportsLag(t *testing.T) {
	b := newBroker(t, memory.Config{DefaultPartitions: 2})
	g := newGated()
	c := subscribe(t, b, broker.Subscription{Topic: "lag", Group: "slow", MaxInFlight: 1, DrainTimeout: time.Millisecond}, g.handle)
	msgs := makeMsgs("lag", 0, 10, 0) // empty keys: 5 per partition
	if err := b.Publish(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	<-g.started
	rep, err := b.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if rep.Backend != "memory" || rep.Status != "healthy" || len(rep.Checks) < 2 {
		t.Fatalf("report %+v", rep)
	}
	if got := rep.TotalLag("slow", "lag"); got != 10 {
		t.Fatalf("total lag %d, want 10", got)
	}
	for _, l := range rep.Lag {
		if l.Consumers != 1 || l.End != 5 || l.Lag != l.End-l.Committed {
			t.Fatalf("lag %+v", l)
		}
	}
	_ = c.Close()
	if l := lagOf(t, b, "slow", "lag", 0); l.Consumers != 0 || l.Lag != 5 {
		t.Fatalf("after Close: %+v", l)
	}
}

func TestCloseDrainsInFlight(t *testing.T) {
	for _, conc := range []int{1, 4} {
		t.Run("concurrency "+strconv.Itoa(conc), func(t *testing.T) {
			b := newBroker(t, memory.Config{DefaultPartitions: 1})
			g := newGated()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			c, err := b.Subscribe(ctx, broker.Subscription{Topic: "drain", Group: "g", Concurrency: conc, MaxInFlight: 1}, g.handle)
			if err != nil {
				t.Fatal(err)
			}
			publish(t, b, "drain", 0, 3, 1)
			<-g.started
			cancel() // like Close: stop handing out, let the in-flight one finish
			select {
			case <-c.Done():
				t.Fatal("stopped with a handler in flight")
			case <-time.After(20 * time.Millisecond): // lets a bug show
			}
			close(g.open)
			waitDone(t, c)
			if c.Err() != nil || len(g.r.all()) != 1 {
				t.Fatalf("err %v, handled %d, want nil and 1", c.Err(), len(g.r.all()))
			}
			if l := lagOf(t, b, "g", "drain", 0); l.Committed != 1 {
				t.Fatalf("committed %d after the drain, want 1", l.Committed)
			}
		})
	}
}

func TestDrainTimeoutCancelsHandler(t *testing.T) {
	b := newBroker(t, memory.Config{DefaultPartitions: 1})
	g := newGated() // open never closes: only the drain bound ends the handler
	c := subscribe(t, b, broker.Subscription{Topic: "cut", Group: "g", DrainTimeout: 10 * time.Millisecond}, g.handle)
	publish(t, b, "cut", 0, 2, 1)
	<-g.started
	if err := c.Close(); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if l := lagOf(t, b, "g", "cut", 0); l.Committed != 0 {
		t.Fatalf("committed %d: a cut-short message was acknowledged", l.Committed)
	}
	rep, _ := b.Health(context.Background())
	for _, ch := range rep.Checks {
		if ch.Name == "topic cut.dlq" {
			t.Fatal("a message cut short by the drain bound was dead-lettered")
		}
	}
}

func TestSubscribeValidates(t *testing.T) {
	b := newBroker(t, memory.Config{})
	for _, sub := range []broker.Subscription{{Group: "g"}, {Topic: "t"}, {Topic: "t", Group: "g", MaxInFlight: -1}} {
		if _, err := b.Subscribe(context.Background(), sub, func(context.Context, *broker.Message) error { return nil }); !errors.Is(err, broker.ErrInvalidSubscription) {
			t.Errorf("Subscribe(%+v) = %v", sub, err)
		}
	}
	if _, err := b.Subscribe(context.Background(), broker.Subscription{Topic: "t", Group: "g"}, nil); !errors.Is(err, broker.ErrInvalidSubscription) {
		t.Errorf("nil handler: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := b.Subscribe(ctx, broker.Subscription{Topic: "t", Group: "g"}, func(context.Context, *broker.Message) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled ctx: %v", err)
	}
}

type publishHook struct{ n atomic.Int32 }

func (h *publishHook) OnPublished(_ context.Context, msgs []*broker.Message, _ time.Duration, err error) {
	if err == nil {
		h.n.Add(int32(len(msgs)))
	}
}

func TestHooksAndMiddleware(t *testing.T) {
	hook := &publishHook{}
	var wrapped atomic.Int32
	mw := func(next broker.Handler) broker.Handler {
		return func(ctx context.Context, m *broker.Message) error { wrapped.Add(1); return next(ctx, m) }
	}
	b := newBroker(t, memory.Config{Hooks: []broker.Hook{hook, broker.Middleware(mw)}})
	r := newRecorder()
	subscribe(t, b, broker.Subscription{Topic: "h", Group: "g"}, r.handle)
	publish(t, b, "h", 0, 3, 1)
	r.waitN(t, 3)
	if hook.n.Load() != 3 || wrapped.Load() != 3 {
		t.Fatalf("hook saw %d, middleware %d, want 3 and 3", hook.n.Load(), wrapped.Load())
	}
}
