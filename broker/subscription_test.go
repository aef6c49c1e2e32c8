package broker_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

func TestSubscriptionWithDefaults(t *testing.T) {
	got := broker.Subscription{Topic: "t", Group: "g"}.WithDefaults()
	want := broker.Subscription{
		Topic: "t", Group: "g",
		Concurrency: broker.DefaultConcurrency, MaxInFlight: broker.DefaultMaxInFlight, DrainTimeout: broker.DefaultDrainTimeout,
		Retry: broker.RetryPolicy{
			MaxAttempts: broker.DefaultMaxAttempts, InitialBackoff: broker.DefaultInitialBackoff, MaxBackoff: broker.DefaultMaxBackoff,
			Multiplier: broker.DefaultMultiplier, Jitter: broker.DefaultJitter,
		},
	}
	if !equalSubscriptions(got, want) {
		t.Fatalf("WithDefaults\n got %+v\nwant %+v", got, want)
	}
	if got.OnFailure != broker.OnFailureDeadLetter || got.StartAt != broker.StartOldest || got.HandlerTimeout != 0 {
		t.Fatalf("zero-valued policies changed: %+v", got)
	}

	set := broker.Subscription{Topic: "t", Group: "g", Concurrency: 4, MaxInFlight: 8, DrainTimeout: time.Second,
		Retry: broker.RetryPolicy{MaxAttempts: 1, InitialBackoff: time.Millisecond, MaxBackoff: time.Second, Multiplier: 3, Jitter: 0.5}}
	if got := set.WithDefaults(); !equalSubscriptions(got, set) {
		t.Fatalf("WithDefaults changed set fields: %+v", got)
	}
	if got := (broker.RetryPolicy{Jitter: -1}).WithDefaults().Jitter; got != 0 {
		t.Fatalf("negative Jitter became %v, want 0 (off)", got)
	}
}

func equalSubscriptions(a, b broker.Subscription) bool {
	return a.Topic == b.Topic && a.Group == b.Group && a.Ephemeral == b.Ephemeral && a.Concurrency == b.Concurrency &&
		a.MaxInFlight == b.MaxInFlight && a.Retry == b.Retry && a.OnFailure == b.OnFailure &&
		a.HandlerTimeout == b.HandlerTimeout && a.DrainTimeout == b.DrainTimeout && a.StartAt == b.StartAt &&
		strings.Join(a.EventTypes, ",") == strings.Join(b.EventTypes, ",")
}

func TestSubscriptionValidateAcceptsValid(t *testing.T) {
	for _, s := range []broker.Subscription{
		{Topic: "t", Group: "g"},
		{Topic: "t", Ephemeral: true},
		{Topic: "t", Group: "g", EventTypes: []string{"job.*", "#", "system.health", "#.failed"}, OnFailure: broker.OnFailureDiscard, StartAt: broker.StartNewest},
		{Topic: "t", Group: "g", Retry: broker.RetryPolicy{Jitter: 1, Multiplier: 1}},
	} {
		if err := s.Validate(); err != nil {
			t.Errorf("%+v: %v", s, err)
		}
	}
}

// TestSubscriptionValidateReportsEverything: one call lists every problem.
func TestSubscriptionValidateReportsEverything(t *testing.T) {
	s := broker.Subscription{
		Topic: "  ", Concurrency: -1, MaxInFlight: -2, HandlerTimeout: -time.Second,
		OnFailure: broker.FailurePolicy(9), StartAt: broker.StartPosition(5), DeadLetterFallback: broker.DeadLetterFallback(4),
		EventTypes: []string{"", "job..x", "job.*x"},
		Retry:      broker.RetryPolicy{MaxAttempts: -1, InitialBackoff: 2 * time.Second, MaxBackoff: time.Second, Multiplier: 0.5, Jitter: 2},
	}
	err := s.Validate()
	if !errors.Is(err, broker.ErrInvalidSubscription) {
		t.Fatalf("err = %v, want ErrInvalidSubscription", err)
	}
	for _, want := range []string{
		"Topic is required", "Group is required", "Concurrency must be at least 1, got -1",
		"MaxInFlight must be at least 1, got -2", "timeouts must not be negative",
		"OnFailure FailurePolicy(9) is not a FailurePolicy", "StartAt 5 is not a StartPosition",
		"DeadLetterFallback DeadLetterFallback(4) is not a DeadLetterFallback", "empty pattern", `pattern "job..x" has an empty word`, `in pattern "job.*x", * and # must be whole words`,
		"Retry.MaxAttempts must be at least 1, got -1", "Retry.MaxBackoff 1s is below InitialBackoff 2s",
		"Retry.Multiplier must be at least 1, got 0.5", "Retry.Jitter must be at most 1, got 2",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

func TestRetryPolicyValidateNegativeBackoff(t *testing.T) {
	err := broker.RetryPolicy{InitialBackoff: -time.Second}.Validate()
	if err == nil || !strings.Contains(err.Error(), "must not be negative") {
		t.Fatalf("err = %v", err)
	}
}

func TestMatchEventType(t *testing.T) {
	tests := []struct {
		pattern, typ string
		want         bool
	}{
		{"job.completed", "job.completed", true},
		{"job.completed", "job.failed", false},
		{"job.completed", "job.completed.extra", false},
		{"job.completed", "job", false},
		{"*", "job", true},
		{"*", "job.completed", false},
		{"job.*", "job.completed", true},
		{"job.*", "job", false},
		{"job.*", "job.a.b", false},
		{"*.failed", "job.failed", true},
		{"#", "job.completed", true},
		{"#", "system.health", true},
		{"#", "job", true},
		{"job.#", "job", true},
		{"job.#", "job.completed", true},
		{"job.#", "job.a.b.c", true},
		{"job.#", "jobs.completed", false},
		{"#.failed", "job.failed", true},
		{"#.failed", "failed", true},
		{"#.failed", "a.b.failed", true},
		{"#.failed", "job.failed.not", false},
		{"job.#.done", "job.done", true},
		{"job.#.done", "job.x.y.done", true},
		{"#.#", "a.b", true},
		{"*.*", "a", false},
	}
	for _, tt := range tests {
		if got := broker.MatchEventType(tt.pattern, tt.typ); got != tt.want {
			t.Errorf("MatchEventType(%q, %q) = %v, want %v", tt.pattern, tt.typ, got, tt.want)
		}
	}
}

func TestSubscriptionMatches(t *testing.T) {
	all := broker.Subscription{}
	if !all.Matches("anything") || !all.Matches("") {
		t.Fatal("no EventTypes must match everything")
	}
	some := broker.Subscription{EventTypes: []string{"job.completed", "job.failed"}}
	for typ, want := range map[string]bool{"job.completed": true, "job.failed": true, "job.queued": false} {
		if some.Matches(typ) != want {
			t.Errorf("Matches(%q) = %v, want %v", typ, !want, want)
		}
	}
}

func TestFailurePolicyString(t *testing.T) {
	for p, want := range map[broker.FailurePolicy]string{
		broker.OnFailureDeadLetter: "dead-letter", broker.OnFailureStop: "stop", broker.OnFailureDiscard: "discard", 7: "FailurePolicy(7)",
	} {
		if got := p.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", int(p), got, want)
		}
	}
}
