package broker_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

// This file tests broker.go (Chain) and holds the helpers the other
// black-box tests share.

// errBoom is the handler error the tests use.
var errBoom = errors.New("boom")

// capturePublisher is a Publisher that records what it is given. It can be
// told to fail its next calls, and to run a function on each call.
type capturePublisher struct {
	mu       sync.Mutex
	msgs     []*broker.Message
	calls    int
	failNext int   // calls still to fail; -1: fail every call
	err      error // returned by a failing call; default errPublish
	onCall   func(call int)
	closed   bool
}

var errPublish = errors.New("publish refused")

func (p *capturePublisher) Publish(_ context.Context, msgs ...*broker.Message) error {
	p.mu.Lock()
	p.calls++
	call, onCall := p.calls, p.onCall
	fail := p.failNext != 0
	if p.failNext > 0 {
		p.failNext--
	}
	if !fail {
		for _, m := range msgs {
			p.msgs = append(p.msgs, m.Clone())
		}
	}
	err := p.err
	p.mu.Unlock()
	if onCall != nil {
		onCall(call)
	}
	if fail {
		if err == nil {
			err = errPublish
		}
		return err
	}
	return nil
}

func (p *capturePublisher) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.closed = true
	return nil
}

func (p *capturePublisher) Messages() []*broker.Message {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.msgs)
}

func (p *capturePublisher) Calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// newMessage returns a consumed-looking message: topic, key, body, an event
// ID and type, and a delivery at partition 3, offset 42 in group "g".
func newMessage() *broker.Message {
	return &broker.Message{
		Topic: "job-lifecycle",
		Key:   "job-1",
		Body:  []byte("body"),
		Headers: broker.Headers{
			{Key: broker.HeaderID, Value: "0190f1c2-0000-7000-8000-000000000001"},
			{Key: broker.HeaderType, Value: "job.queued"},
			{Key: "x-custom", Value: "kept"},
		},
		Delivery: broker.Delivery{Partition: 3, Offset: 42, Group: "g", ReceivedAt: time.Unix(1, 0)},
	}
}

// recorder is a hook implementing every hook interface; it records calls as
// strings, in order.
type recorder struct {
	mu     sync.Mutex
	events []string
	errs   []error
}

func (r *recorder) add(s string, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, s)
	r.errs = append(r.errs, err)
}

func (r *recorder) Events() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *recorder) Errs() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.errs)
}

func (r *recorder) OnHandled(_ context.Context, m *broker.Message, _ time.Duration, err error) {
	if err != nil {
		r.add("failed#"+strconv.Itoa(m.Delivery.Attempt), err)
		return
	}
	r.add("handled#"+strconv.Itoa(m.Delivery.Attempt), nil)
}

func (r *recorder) OnRetry(_ context.Context, _ *broker.Message, attempt int, err error) {
	r.add("retry#"+strconv.Itoa(attempt), err)
}

func (r *recorder) OnDeadLetter(_ context.Context, _ *broker.Message, err error) {
	r.add("deadletter", err)
}

func (r *recorder) OnDeadLetterFailed(_ context.Context, _ *broker.Message, _, publishErr error) {
	r.add("deadletterfailed", publishErr)
}

func (r *recorder) OnSkipped(_ context.Context, _ *broker.Message, reason error) {
	r.add("skipped", reason)
}

func (r *recorder) OnDiscard(_ context.Context, _ *broker.Message, err error) {
	r.add("discard", err)
}

func (r *recorder) OnDuplicate(_ context.Context, _ *broker.Message) { r.add("duplicate", nil) }

func (r *recorder) OnPublished(_ context.Context, msgs []*broker.Message, _ time.Duration, err error) {
	r.add("published:"+strconv.Itoa(len(msgs)), err)
}

// wait fails the test if ch is not closed within a generous deadline: it
// bounds a wait that must end, it never stands in for synchronisation.
func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

func TestChainOrder(t *testing.T) {
	var order []string
	mw := func(name string) broker.Middleware {
		return func(next broker.Handler) broker.Handler {
			return func(ctx context.Context, m *broker.Message) error {
				order = append(order, name+">")
				err := next(ctx, m)
				order = append(order, "<"+name)
				return err
			}
		}
	}
	h := func(context.Context, *broker.Message) error {
		order = append(order, "handler")
		return errBoom
	}
	err := broker.Chain(h, mw("a"), mw("b"), mw("c"))(context.Background(), newMessage())
	if !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want the handler's", err)
	}
	want := []string{"a>", "b>", "c>", "handler", "<c", "<b", "<a"}
	if !reflect.DeepEqual(order, want) {
		t.Fatalf("order = %v, want %v", order, want)
	}
}

func TestChainWithoutMiddleware(t *testing.T) {
	called := false
	h := broker.Chain(func(context.Context, *broker.Message) error { called = true; return nil })
	if err := h(context.Background(), newMessage()); err != nil || !called {
		t.Fatalf("Chain(h) = %v, called %v", err, called)
	}
}
