package broker_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

// pipeline returns a Pipeline over sub with fast retries, a capturing
// dead-letter publisher and a recording hook.
func pipeline(sub broker.Subscription) (broker.Pipeline, *capturePublisher, *recorder) {
	if sub.Topic == "" {
		sub.Topic, sub.Group = "job-lifecycle", "g"
	}
	if sub.Retry.InitialBackoff == 0 {
		sub.Retry.InitialBackoff, sub.Retry.MaxBackoff = time.Microsecond, time.Microsecond
	}
	pub, rec := &capturePublisher{}, &recorder{}
	return broker.Pipeline{Subscription: sub, DeadLetters: pub, Hooks: []broker.Hook{rec}}, pub, rec
}

func TestPipelineFilter(t *testing.T) {
	tests := []struct {
		patterns []string
		typ      string
		called   bool
	}{
		{[]string{"job.completed"}, "job.completed", true},
		{[]string{"job.completed"}, "job.queued", false},
		{[]string{"job.*"}, "job.queued", true},
		{[]string{"job.*"}, "system.health", false},
		{[]string{"system.health", "job.#"}, "job.status_changed", true},
		{nil, "anything.at.all", true},
	}
	for _, tt := range tests {
		p, pub, _ := pipeline(broker.Subscription{EventTypes: tt.patterns})
		called := false
		h := p.Wrap(func(context.Context, *broker.Message) error { called = true; return errBoom })
		m := newMessage()
		m.SetHeader(broker.HeaderType, tt.typ)
		err := h(context.Background(), m)
		if called != tt.called {
			t.Errorf("%v / %s: handler called = %v, want %v", tt.patterns, tt.typ, called, tt.called)
		}
		if err != nil {
			t.Errorf("%v / %s: err = %v, want nil (filtered out, or dead-lettered)", tt.patterns, tt.typ, err)
		}
		if wantDL := map[bool]int{true: 1, false: 0}[tt.called]; len(pub.Messages()) != wantDL {
			t.Errorf("%v / %s: %d dead letters, want %d", tt.patterns, tt.typ, len(pub.Messages()), wantDL)
		}
	}
}

func TestPipelineOnFailure(t *testing.T) {
	tests := []struct {
		policy     broker.FailurePolicy
		wantErr    bool
		wantDL     int
		wantEvents []string
	}{
		{broker.OnFailureDeadLetter, false, 1, []string{"failed#1", "retry#1", "failed#2", "deadletter"}},
		{broker.OnFailureDiscard, false, 0, []string{"failed#1", "retry#1", "failed#2", "discard"}},
		{broker.OnFailureStop, true, 0, []string{"failed#1", "retry#1", "failed#2"}},
	}
	for _, tt := range tests {
		t.Run(tt.policy.String(), func(t *testing.T) {
			p, pub, rec := pipeline(broker.Subscription{OnFailure: tt.policy, Retry: broker.RetryPolicy{MaxAttempts: 2}})
			var logs bytes.Buffer
			p.Logger = slog.New(slog.NewTextHandler(&logs, nil))
			calls := 0
			err := p.Wrap(func(context.Context, *broker.Message) error { calls++; return errBoom })(context.Background(), newMessage())
			if (err != nil) != tt.wantErr || tt.wantErr && !errors.Is(err, errBoom) {
				t.Fatalf("err = %v, want error: %v", err, tt.wantErr)
			}
			if calls != 2 {
				t.Fatalf("handler called %d times, want 2", calls)
			}
			if got := len(pub.Messages()); got != tt.wantDL {
				t.Fatalf("%d dead letters, want %d", got, tt.wantDL)
			}
			if tt.wantDL == 1 && pub.Messages()[0].Header(broker.HeaderDLQAttempts) != "2" {
				t.Fatalf("x-dlq-attempts = %q, want 2", pub.Messages()[0].Header(broker.HeaderDLQAttempts))
			}
			if got := rec.Events(); !reflect.DeepEqual(got, tt.wantEvents) {
				t.Fatalf("hooks = %v, want %v", got, tt.wantEvents)
			}
			if tt.policy == broker.OnFailureDiscard && !strings.Contains(logs.String(), "message discarded") {
				t.Fatalf("no discard record in the log:\n%s", logs.String())
			}
		})
	}
}

func TestPipelineDiscardWhileStoppingLeavesMessageUnacknowledged(t *testing.T) {
	p, _, rec := pipeline(broker.Subscription{OnFailure: broker.OnFailureDiscard, Retry: broker.RetryPolicy{MaxAttempts: 1}})
	ctx, cancel := context.WithCancel(context.Background())
	err := p.Wrap(func(context.Context, *broker.Message) error { cancel(); return errBoom })(ctx, newMessage())
	if !errors.Is(err, errBoom) {
		t.Fatalf("err = %v, want the handler error", err)
	}
	if got := rec.Events(); !reflect.DeepEqual(got, []string{"failed#1"}) {
		t.Fatalf("hooks = %v, want no discard", got)
	}
}

// TestPipelinePanicIsDeadLettered: a panic is an error like any other — retried,
// seen by the hooks on every attempt, then dead-lettered.
func TestPipelinePanicIsDeadLettered(t *testing.T) {
	p, pub, rec := pipeline(broker.Subscription{Retry: broker.RetryPolicy{MaxAttempts: 3}})
	calls := 0
	err := p.Wrap(func(context.Context, *broker.Message) error { calls++; panic("bad message") })(context.Background(), newMessage())
	if err != nil {
		t.Fatalf("err = %v, want nil (dead-lettered)", err)
	}
	if calls != 3 {
		t.Fatalf("handler called %d times, want 3", calls)
	}
	dl := pub.Messages()
	if len(dl) != 1 || !strings.Contains(dl[0].Header(broker.HeaderDLQError), "handler panic: bad message") {
		t.Fatalf("dead letters %v, want one recording the panic", dl)
	}
	want := []string{"failed#1", "retry#1", "failed#2", "retry#2", "failed#3", "deadletter"}
	if got := rec.Events(); !reflect.DeepEqual(got, want) {
		t.Fatalf("hooks = %v, want %v", got, want)
	}
	var pe *broker.PanicError
	if errs := rec.Errs(); !errors.As(errs[0], &pe) {
		t.Fatalf("OnHandled got %v, want a *PanicError", errs[0])
	}
}

func TestPipelinePermanentErrorSkipsRetries(t *testing.T) {
	p, pub, rec := pipeline(broker.Subscription{Retry: broker.RetryPolicy{MaxAttempts: 5}})
	err := p.Wrap(failing(broker.Permanent(errBoom)))(context.Background(), newMessage())
	if err != nil || len(pub.Messages()) != 1 || pub.Messages()[0].Header(broker.HeaderDLQPermanent) != "true" {
		t.Fatalf("err %v, dead letters %v", err, pub.Messages())
	}
	if got := rec.Events(); !reflect.DeepEqual(got, []string{"failed#1", "deadletter"}) {
		t.Fatalf("hooks = %v", got)
	}
}

func TestPipelineHandlerTimeoutPerAttempt(t *testing.T) {
	p, pub, _ := pipeline(broker.Subscription{HandlerTimeout: time.Millisecond, Retry: broker.RetryPolicy{MaxAttempts: 2}})
	calls := 0
	h := func(ctx context.Context, _ *broker.Message) error {
		calls++
		<-ctx.Done()
		return ctx.Err()
	}
	if err := p.Wrap(h)(context.Background(), newMessage()); err != nil {
		t.Fatalf("err = %v, want nil (dead-lettered)", err)
	}
	if calls != 2 {
		t.Fatalf("%d attempts, want 2: each attempt gets its own timeout", calls)
	}
	if dl := pub.Messages(); len(dl) != 1 || !strings.Contains(dl[0].Header(broker.HeaderDLQError), "deadline exceeded") {
		t.Fatalf("dead letters %v", dl)
	}
}

// TestPipelineOrder checks the chain from the outside in: message
// wrappers, filter, failure policy, Retry, Timeout, Recover, attempt
// wrappers, handler.
func TestPipelineOrder(t *testing.T) {
	var order []string
	mw := broker.Middleware(func(next broker.Handler) broker.Handler {
		return func(ctx context.Context, m *broker.Message) error {
			order = append(order, "middleware:"+m.Header(broker.HeaderType))
			err := next(ctx, m)
			order = append(order, "middleware-sees:"+errString(err))
			return err
		}
	})
	attempt := broker.AttemptMiddleware(func(next broker.Handler) broker.Handler {
		return func(ctx context.Context, m *broker.Message) error {
			order = append(order, "attempt")
			return next(ctx, m) // a panic passes through to Recover, outside
		}
	})
	p, _, _ := pipeline(broker.Subscription{EventTypes: []string{"job.queued"}, HandlerTimeout: time.Hour, Retry: broker.RetryPolicy{MaxAttempts: 2}})
	p.Hooks = append(p.Hooks, mw, attempt)
	h := p.Wrap(func(ctx context.Context, m *broker.Message) error {
		_, hasDeadline := ctx.Deadline()
		order = append(order, "handler#"+strconv.Itoa(m.Delivery.Attempt)+" deadline:"+strconv.FormatBool(hasDeadline))
		panic("x")
	})
	other := newMessage()
	other.SetHeader(broker.HeaderType, "job.completed")
	if err := h(context.Background(), other); err != nil {
		t.Fatal(err)
	}
	if err := h(context.Background(), newMessage()); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"middleware:job.completed", "middleware-sees:nil", // filtered inside the middleware
		"middleware:job.queued", "attempt", "handler#1 deadline:true", "attempt", "handler#2 deadline:true",
		"middleware-sees:nil", // the failure policy (dead letter) is inside the middleware
	}
	if !reflect.DeepEqual(order, want) {
		t.Fatalf("order\n got %v\nwant %v", order, want)
	}
}

func TestPipelineWithoutHooksOrLogger(t *testing.T) {
	pub := &capturePublisher{}
	p := broker.Pipeline{Subscription: broker.Subscription{Topic: "t", Group: "g", Retry: fast(2)}, DeadLetters: pub}
	if err := p.Wrap(failing(errBoom))(context.Background(), newMessage()); err != nil || len(pub.Messages()) != 1 {
		t.Fatalf("err %v, %d dead letters", err, len(pub.Messages()))
	}
}

func errString(err error) string {
	if err == nil {
		return "nil"
	}
	return err.Error()
}

// TestPipelineSkipped: ErrSkipped acknowledges the message at once: no
// retry, no dead letter, HookSkipped told.
func TestPipelineSkipped(t *testing.T) {
	p, pub, rec := pipeline(broker.Subscription{Retry: broker.RetryPolicy{MaxAttempts: 5}})
	calls := 0
	h := p.Wrap(func(context.Context, *broker.Message) error {
		calls++
		return fmt.Errorf("not mine: %w", broker.ErrSkipped)
	})
	if err := h(context.Background(), newMessage()); err != nil {
		t.Fatalf("err = %v, want nil", err)
	}
	if calls != 1 || pub.Calls() != 0 {
		t.Fatalf("%d calls, %d dead letters; want 1 and 0", calls, pub.Calls())
	}
	if ev := rec.Events(); !reflect.DeepEqual(ev, []string{"skipped", "handled#1"}) {
		t.Fatalf("hooks = %v, want skipped then handled#1", ev)
	}
}

// TestPipelineDeadLetterFallback: the subscription's DeadLetterFallback
// reaches the dead-letter step, and its MaxSize too.
func TestPipelineDeadLetterFallback(t *testing.T) {
	for _, fb := range []broker.DeadLetterFallback{broker.FallbackStop, broker.FallbackDiscard} {
		p, pub, _ := pipeline(broker.Subscription{DeadLetterFallback: fb, Retry: broker.RetryPolicy{MaxAttempts: 1}})
		pub.failNext, pub.err = -1, broker.ErrUnroutable
		err := p.Wrap(failing(errBoom))(context.Background(), newMessage())
		var dle *broker.DeadLetterError
		if (fb == broker.FallbackStop) != errors.As(err, &dle) || fb == broker.FallbackDiscard && err != nil {
			t.Fatalf("fallback %v: err = %v", fb, err)
		}
	}
	p, pub, _ := pipeline(broker.Subscription{Retry: broker.RetryPolicy{MaxAttempts: 1}})
	p.DeadLetterMaxSize = 10
	if err := p.Wrap(failing(errBoom))(context.Background(), newMessage()); err != nil {
		t.Fatal(err)
	}
	if dl := pub.Messages()[0]; len(dl.Body) != 0 || dl.Header(broker.HeaderDLQBodySize) != "4" {
		t.Fatalf("dead letter over DeadLetterMaxSize kept its body: %q, %v", dl.Body, dl.Headers)
	}
}
