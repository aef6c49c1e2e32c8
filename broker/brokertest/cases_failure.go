package brokertest

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

func testRetryThenSuccess(e *env) {
	topic := e.topic("retry")
	c := newCollector()
	var calls atomic.Int32
	h := func(ctx context.Context, m *broker.Message) error {
		if m.Header(hdrSeq) == "1" && calls.Add(1) < 3 {
			return errors.New("transient")
		}
		c.add(m)
		return nil
	}
	dlq := newCollector()
	e.subscribe(nil, broker.Subscription{Topic: broker.DeadLetterTopic(topic), Group: e.group("dlq")}, dlq.handler)
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: e.group("g"), Retry: broker.RetryPolicy{MaxAttempts: 3}}, h)
	e.publishN(topic, 3, 1)
	msgs := c.waitCount(e.t, e.f.Timeout, 3)
	for _, m := range msgs {
		if m.Header(hdrSeq) == "1" && m.Delivery.Attempt != 3 {
			e.t.Fatalf("message 1 succeeded on attempt %d, want 3", m.Delivery.Attempt)
		}
	}
	assertOrdered(e, msgs)
	e.publishMarker(broker.DeadLetterTopic(topic))
	got := dlq.waitUntil(e.t, e.f.Timeout, "dead-letter marker", hasMarker)
	if len(got) != 1 {
		e.t.Fatalf("a message that succeeded on retry was dead-lettered: %s", describe(got))
	}
}

func testDeadLetter(e *env) {
	topic := e.topic("dlq")
	group := e.group("g")
	dlq := newCollector()
	e.subscribe(nil, broker.Subscription{Topic: broker.DeadLetterTopic(topic), Group: e.group("dlq")}, dlq.handler)
	ok := newCollector()
	var poisonCalls atomic.Int32
	h := func(ctx context.Context, m *broker.Message) error {
		if m.Header(hdrSeq) == "2" {
			poisonCalls.Add(1)
			return errors.New("poison: cannot process")
		}
		ok.add(m)
		return nil
	}
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: group, Retry: broker.RetryPolicy{MaxAttempts: 3}}, h)
	e.publishN(topic, 6, 1) // one key: the poison message sits in the middle of an ordered stream
	ok.waitCount(e.t, e.f.Timeout, 5)
	dl := dlq.waitCount(e.t, e.f.Timeout, 1)[0]
	if dl.Header(hdrSeq) != "2" || string(dl.Body) != "body-2" || dl.Key != "key-0" {
		e.t.Fatalf("dead letter is seq %s body %q key %q, want seq 2 body-2 key-0", dl.Header(hdrSeq), dl.Body, dl.Key)
	}
	want := map[string]string{
		broker.HeaderDLQError:    "poison: cannot process",
		broker.HeaderDLQAttempts: "3",
		broker.HeaderDLQTopic:    topic,
		broker.HeaderDLQGroup:    group,
		"bt-unicode-value":       "ünïcødé ✓ 星",
	}
	for k, v := range want {
		if dl.Header(k) != v {
			e.t.Errorf("dead letter header %s = %q, want %q", k, dl.Header(k), v)
		}
	}
	if dl.Header(broker.HeaderDLQTime) == "" {
		e.t.Errorf("dead letter has no %s header", broker.HeaderDLQTime)
	}
	if n := poisonCalls.Load(); n != 3 {
		e.t.Errorf("poison message handled %d times, want 3 (MaxAttempts)", n)
	}
	// Message 2 is gone from the stream (dead-lettered), so the others
	// arrive with a gap there; they must still arrive in order.
	assertIncreasing(e, ok.snapshot())
}

func testPanic(e *env) {
	topic := e.topic("panic")
	dlq := newCollector()
	e.subscribe(nil, broker.Subscription{Topic: broker.DeadLetterTopic(topic), Group: e.group("dlq")}, dlq.handler)
	ok := newCollector()
	h := func(ctx context.Context, m *broker.Message) error {
		if m.Header(hdrSeq) == "1" {
			var nilMap map[string]int
			//lint:ignore SA5000 the test needs a real runtime panic in a handler
			nilMap["boom"]++
		}
		ok.add(m)
		return nil
	}
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: e.group("g"), Retry: broker.RetryPolicy{MaxAttempts: 2}}, h)
	e.publishN(topic, 4, 1)
	ok.waitCount(e.t, e.f.Timeout, 3)
	dl := dlq.waitCount(e.t, e.f.Timeout, 1)[0]
	if dl.Header(hdrSeq) != "1" || dl.Header(broker.HeaderDLQError) == "" {
		e.t.Fatalf("panicking message not dead-lettered with its error: %+v", dl.Headers)
	}
}

func testStopPolicy(e *env) {
	topic := e.topic("stop")
	group := e.group("g")
	c := newCollector()
	h := func(ctx context.Context, m *broker.Message) error {
		if m.Header(hdrSeq) == "1" {
			return errors.New("must not skip")
		}
		c.add(m)
		return nil
	}
	cons := e.subscribe(nil, broker.Subscription{Topic: topic, Group: group, OnFailure: broker.OnFailureStop, Retry: broker.RetryPolicy{MaxAttempts: 2}}, h)
	e.publishN(topic, 3, 1)
	e.waitDone(cons, "a handler failure with OnFailureStop")
	var he *broker.HandlerError
	if err := cons.Err(); !errors.As(err, &he) || he.Topic != topic {
		e.t.Fatalf("Consumer.Err() = %v, want *broker.HandlerError for topic %s", err, topic)
	}
	if he.Attempts != 2 {
		e.t.Errorf("HandlerError.Attempts = %d, want 2", he.Attempts)
	}
	if got := c.snapshot(); len(got) != 1 || got[0].Header(hdrSeq) != "0" {
		e.t.Fatalf("handled before the stop: %s; want only message 0 (message 2 must wait behind 1)", describe(got))
	}
	if !e.f.Persistent {
		return
	}
	again := newCollector()
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: group}, again.handler)
	msgs := again.waitCount(e.t, e.f.Timeout, 2)
	if msgs[0].Header(hdrSeq) != "1" {
		e.t.Fatalf("after the stop, the group resumed at %s, want the unacknowledged message 1", msgs[0].Header(hdrSeq))
	}
}

// blockingHandler holds every message in the handler until release is
// closed, and reports each start on started.
type blockingHandler struct {
	started  chan *broker.Message
	release  chan struct{}
	finished collector
	once     sync.Once
}

func newBlocking() *blockingHandler {
	return &blockingHandler{started: make(chan *broker.Message, 1024), release: make(chan struct{}), finished: *newCollector()}
}

func (b *blockingHandler) handle(ctx context.Context, m *broker.Message) error {
	b.started <- m.Clone()
	<-b.release // ignores ctx on purpose: the drain must wait for it
	b.finished.add(m)
	return nil
}

func (b *blockingHandler) open() { b.once.Do(func() { close(b.release) }) }

func testCloseDrains(e *env) { drainTest(e, false) }

func testCancelDrains(e *env) { drainTest(e, true) }

func drainTest(e *env, byCancel bool) {
	topic := e.topic("drain")
	group := e.group("g")
	bh := newBlocking()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub := broker.Subscription{Topic: topic, Group: group, MaxInFlight: 1}
	cons, err := e.b.Subscriber.Subscribe(ctx, sub, bh.handle)
	if err != nil {
		e.t.Fatalf("Subscribe: %v", err)
	}
	e.t.Cleanup(func() { bh.open(); _ = cons.Close() })
	e.publishN(topic, 5, 1)
	<-bh.started
	stopped := make(chan error, 1)
	go func() {
		if byCancel {
			cancel()
			<-cons.Done()
			stopped <- cons.Err()
			return
		}
		stopped <- cons.Close()
	}()
	// Give a wrong implementation the chance to return early. This window
	// only lets a bug show; the pass condition does not depend on it.
	select {
	case err := <-stopped:
		e.t.Fatalf("consumer stopped (%v) while a handler was still running", err)
	case <-time.After(100 * time.Millisecond):
	}
	bh.open()
	if err := <-stopped; err != nil {
		e.t.Fatalf("clean stop returned %v", err)
	}
	if bh.finished.count() < 1 {
		e.t.Fatal("the in-flight handler did not finish before the stop returned")
	}
	if !e.f.Persistent {
		return
	}
	// What finished is committed: a new subscription of the group does not
	// see message 0 again, and sees every message after the last finished.
	finished := map[string]bool{}
	for _, m := range bh.finished.snapshot() {
		finished[m.Header(hdrSeq)] = true
	}
	again := newCollector()
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: group}, again.handler)
	want := 5 - len(finished)
	msgs := again.waitCount(e.t, e.f.Timeout, want)
	for _, m := range msgs {
		if finished[m.Header(hdrSeq)] {
			e.t.Fatalf("message %s was handled before the stop and delivered again: not committed", m.Header(hdrSeq))
		}
	}
}

func testResubscribe(e *env) {
	if !e.f.Persistent {
		e.t.Skip("backend is not persistent")
	}
	topic := e.topic("resub")
	group := e.group("g")
	e.declareGroup(topic, group)
	n := e.n(100)
	e.publishN(topic, n, 5)
	first := newCollector()
	var handled atomic.Int32
	stopAt := int32(n / 3)
	sub := broker.Subscription{Topic: topic, Group: group, DrainTimeout: 200 * time.Millisecond}
	cons := e.subscribe(nil, sub, func(ctx context.Context, m *broker.Message) error {
		if handled.Load() >= stopAt {
			<-ctx.Done() // hold the rest until the drain bound: they stay unacknowledged
			return ctx.Err()
		}
		handled.Add(1)
		first.add(m)
		return nil
	})
	first.waitCount(e.t, e.f.Timeout, int(stopAt))
	_ = cons.Close()
	var restarted broker.Subscriber
	if e.b.NewSubscriber != nil {
		restarted = e.b.NewSubscriber(e.t) // a restarted process
	}
	second := newCollector()
	e.subscribe(restarted, broker.Subscription{Topic: topic, Group: group}, second.handler)
	e.publishMarker(topic)
	second.waitUntil(e.t, e.f.Timeout, "every message after the restart", func(ms []*broker.Message) bool {
		seen := distinct(append(first.snapshot(), ms...))
		return len(seen) >= n+1
	})
	firstSeen := distinct(first.snapshot())
	dups := 0
	for _, m := range second.snapshot() {
		if firstSeen[m.Header(hdrSeq)] > 0 {
			dups++
		}
	}
	if dups > 0 {
		e.t.Errorf("%d message(s) acknowledged before the restart were delivered again", dups)
	}
}

func testPublishAfterClose(e *env) {
	topic := e.topic("closed")
	if err := e.b.Publisher.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	err := e.b.Publisher.Publish(context.Background(), msg(topic, "k", 0, []byte("x")))
	if !errors.Is(err, broker.ErrClosed) {
		e.t.Fatalf("Publish after Close = %v, want ErrClosed", err)
	}
	if err := e.b.Publisher.Close(); err != nil {
		e.t.Fatalf("second Close = %v, want nil (idempotent)", err)
	}
}

func testSubscribeAfterClose(e *env) {
	topic := e.topic("subclosed")
	if err := e.b.Subscriber.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	_, err := e.b.Subscriber.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: e.group("g")}, newCollector().handler)
	if !errors.Is(err, broker.ErrClosed) {
		e.t.Fatalf("Subscribe after Close = %v, want ErrClosed", err)
	}
}

func testOversized(e *env) {
	if e.f.MaxMessageBytes <= 0 {
		e.t.Skip("Features.MaxMessageBytes not set")
	}
	topic := e.topic("big")
	c := newCollector()
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: e.group("g")}, c.handler)
	big := msg(topic, "k", 1, make([]byte, e.f.MaxMessageBytes+1))
	small := msg(topic, "k", 0, []byte("fits"))
	err := e.b.Publisher.Publish(context.Background(), small, big)
	if !errors.Is(err, broker.ErrMessageTooLarge) {
		e.t.Fatalf("Publish of %d bytes = %v, want ErrMessageTooLarge", big.Size(), err)
	}
	e.publishMarker(topic)
	got := c.waitUntil(e.t, e.f.Timeout, "marker", hasMarker)
	for _, m := range got {
		if m.Header(hdrSeq) == "1" {
			e.t.Fatal("the oversized message was delivered")
		}
	}
	// The backend keeps working after the refusal.
	if err := e.b.Publisher.Publish(context.Background(), msg(topic, "k", 2, []byte("after"))); err != nil {
		e.t.Fatalf("Publish after an oversized message: %v", err)
	}
	c.waitUntil(e.t, e.f.Timeout, "message after the refusal", func(ms []*broker.Message) bool {
		return distinct(ms)["2"] > 0
	})
}

func testInvalidSubscription(e *env) {
	for _, sub := range []broker.Subscription{
		{Group: "g"},
		{Topic: e.topic("inv")},
		{Topic: e.topic("inv2"), Group: "g", Concurrency: -1},
		{Topic: e.topic("inv3"), Group: "g", EventTypes: []string{"job.*x"}},
	} {
		c, err := e.b.Subscriber.Subscribe(context.Background(), sub, newCollector().handler)
		if !errors.Is(err, broker.ErrInvalidSubscription) {
			if c != nil {
				_ = c.Close()
			}
			e.t.Errorf("Subscribe(%+v) = %v, want ErrInvalidSubscription", sub, err)
		}
	}
}
