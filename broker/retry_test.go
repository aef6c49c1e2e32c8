package broker_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

// fast is a retry policy whose waits are negligible.
func fast(attempts int) broker.RetryPolicy {
	return broker.RetryPolicy{MaxAttempts: attempts, InitialBackoff: time.Microsecond, MaxBackoff: time.Microsecond}
}

func TestRetryAttempts(t *testing.T) {
	tests := []struct {
		name        string
		maxAttempts int
		results     []error // what call n returns; beyond the end: errBoom
		wantCalls   int
		wantErr     error
		wantRetries []string
	}{
		{"one attempt, no retry", 1, nil, 1, errBoom, nil},
		{"three attempts, all fail", 3, nil, 3, errBoom, []string{"retry#1", "retry#2"}},
		{"success first", 3, []error{nil}, 1, nil, nil},
		{"success on the second stops", 3, []error{errBoom, nil}, 2, nil, []string{"retry#1"}},
		{"permanent stops at once", 3, []error{broker.Permanent(errBoom)}, 1, broker.ErrPermanent, nil},
		{"permanent on the second", 5, []error{errBoom, broker.Permanent(errBoom)}, 2, broker.ErrPermanent, []string{"retry#1"}},
		{"default policy: 3 attempts", 0, nil, 3, errBoom, []string{"retry#1", "retry#2"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := fast(tt.maxAttempts)
			var attempts []int
			h := func(_ context.Context, m *broker.Message) error {
				attempts = append(attempts, m.Delivery.Attempt)
				if n := len(attempts); n <= len(tt.results) {
					return tt.results[n-1]
				}
				return errBoom
			}
			rec := &recorder{}
			m := newMessage()
			err := broker.Retry(p, rec)(h)(context.Background(), m)
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if len(attempts) != tt.wantCalls {
				t.Fatalf("handler called %d times, want %d", len(attempts), tt.wantCalls)
			}
			for i, a := range attempts {
				if a != i+1 {
					t.Fatalf("Delivery.Attempt on call %d = %d (all: %v)", i+1, a, attempts)
				}
			}
			if m.Delivery.Attempt != tt.wantCalls {
				t.Fatalf("Delivery.Attempt after Retry = %d, want %d", m.Delivery.Attempt, tt.wantCalls)
			}
			if got := rec.Events(); !reflect.DeepEqual(got, tt.wantRetries) {
				t.Fatalf("retry hooks = %v, want %v", got, tt.wantRetries)
			}
			for _, e := range rec.Errs() {
				if !errors.Is(e, errBoom) {
					t.Fatalf("OnRetry got error %v, want the attempt's", e)
				}
			}
		})
	}
}

func TestRetryPolicyBackoff(t *testing.T) {
	p := broker.RetryPolicy{InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond, Multiplier: 2}
	want := []time.Duration{time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 5 * time.Millisecond, 5 * time.Millisecond}
	for n, w := range want {
		if got := p.Backoff(n + 1); got != w {
			t.Errorf("Backoff(%d) = %v, want %v", n+1, got, w)
		}
	}
	if got := p.Backoff(1000); got != 5*time.Millisecond {
		t.Errorf("Backoff(1000) = %v, want the cap", got)
	}
	var zero broker.RetryPolicy
	if got := zero.Backoff(1); got != broker.DefaultInitialBackoff {
		t.Errorf("zero policy Backoff(1) = %v, want %v", got, broker.DefaultInitialBackoff)
	}
	if got := zero.Backoff(2); got != 2*broker.DefaultInitialBackoff {
		t.Errorf("zero policy Backoff(2) = %v, want %v", got, 2*broker.DefaultInitialBackoff)
	}
	if got := zero.Backoff(100); got != broker.DefaultMaxBackoff {
		t.Errorf("zero policy Backoff(100) = %v, want %v", got, broker.DefaultMaxBackoff)
	}
}

// TestRetryWaits checks that the waits between attempts grow as Backoff
// says, within the jitter: each gap is at least Backoff(n)×(1−jitter). Only
// lower bounds: a loaded machine may wait longer.
func TestRetryWaits(t *testing.T) {
	const jitter = 0.2
	p := broker.RetryPolicy{MaxAttempts: 5, InitialBackoff: 2 * time.Millisecond, MaxBackoff: 8 * time.Millisecond, Multiplier: 2, Jitter: jitter}
	var calls []time.Time
	h := func(context.Context, *broker.Message) error {
		calls = append(calls, time.Now())
		return errBoom
	}
	start := time.Now()
	if err := broker.Retry(p)(h)(context.Background(), newMessage()); !errors.Is(err, errBoom) {
		t.Fatalf("err = %v", err)
	}
	elapsed := time.Since(start)
	if len(calls) != 5 {
		t.Fatalf("%d calls, want 5", len(calls))
	}
	var sum time.Duration
	for n := 1; n < len(calls); n++ {
		min := time.Duration(float64(p.Backoff(n)) * (1 - jitter))
		sum += min
		if gap := calls[n].Sub(calls[n-1]); gap < min {
			t.Errorf("wait before attempt %d = %v, want ≥ %v", n+1, gap, min)
		}
	}
	if elapsed < sum {
		t.Errorf("elapsed %v, want ≥ %v", elapsed, sum)
	}
}

func TestRetryNoJitter(t *testing.T) {
	p := broker.RetryPolicy{MaxAttempts: 3, InitialBackoff: 3 * time.Millisecond, Jitter: -1}
	var calls []time.Time
	h := func(context.Context, *broker.Message) error {
		calls = append(calls, time.Now())
		return errBoom
	}
	_ = broker.Retry(p)(h)(context.Background(), newMessage())
	if gap := calls[2].Sub(calls[1]); gap < 6*time.Millisecond {
		t.Fatalf("second wait %v, want ≥ 6ms without jitter", gap)
	}
}

func TestRetryContextCancelledDuringBackoff(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// The hook runs just before the wait: cancelling there proves Retry
	// leaves an hour-long backoff at once.
	cancelOnRetry := hookFunc(func() { cancel() })
	p := broker.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Hour, MaxBackoff: time.Hour}
	calls := 0
	h := func(context.Context, *broker.Message) error { calls++; return errBoom }
	done := make(chan struct{})
	var err error
	go func() {
		defer close(done)
		err = broker.Retry(p, cancelOnRetry)(h)(ctx, newMessage())
	}()
	wait(t, done, "Retry to return after ctx was cancelled")
	if !errors.Is(err, errBoom) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want both the handler's error and context.Canceled", err)
	}
	if calls != 1 {
		t.Fatalf("handler called %d times, want 1", calls)
	}
}

func TestRetryContextEndedBeforeRetry(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	rec := &recorder{}
	calls := 0
	h := func(context.Context, *broker.Message) error { calls++; cancel(); return errBoom }
	err := broker.Retry(fast(5), rec)(h)(ctx, newMessage())
	if !errors.Is(err, errBoom) || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want both errors", err)
	}
	if calls != 1 || len(rec.Events()) != 0 {
		t.Fatalf("calls = %d, hooks = %v: no retry once ctx ended", calls, rec.Events())
	}
}

// hookFunc is a HookRetry calling f.
type hookFunc func()

func (f hookFunc) OnRetry(context.Context, *broker.Message, int, error) { f() }
