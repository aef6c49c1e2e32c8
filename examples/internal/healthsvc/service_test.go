package healthsvc_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
)

// TestConfigValidate lists every problem of a bad Config in one error that
// matches ErrInvalidConfig.
func TestConfigValidate(t *testing.T) {
	b := newMemory(t, memory.Config{})
	ok := map[string]broker.HealthChecker{"memory": b}
	cases := []struct {
		name string
		cfg  healthsvc.Config
		want []string // substrings of the error; none: valid
	}{
		{"defaults", healthsvc.Config{Checkers: ok}, nil},
		{"signals only", healthsvc.Config{Signals: &signals{}}, nil},
		{"nothing to watch", healthsvc.Config{}, []string{"nothing to watch"}},
		{"nil checker", healthsvc.Config{Checkers: map[string]broker.HealthChecker{"x": nil}}, []string{`Checkers["x"]: nil checker`}},
		{"empty name", healthsvc.Config{Checkers: map[string]broker.HealthChecker{"": b}}, []string{"empty name"}},
		{"negatives", healthsvc.Config{Checkers: ok, Interval: -1, Thresholds: healthsvc.Thresholds{Lag: -1, P99: -1},
			Hysteresis: healthsvc.Hysteresis{ClearAfter: -1}, ExpectedBrokers: map[string]int{"k": -3}},
			[]string{"Interval", "Thresholds.Lag", "Thresholds.P99", "Hysteresis.ClearAfter", `ExpectedBrokers["k"]`}},
		{"rate and ratio", healthsvc.Config{Checkers: ok, Thresholds: healthsvc.Thresholds{ErrorRate: 2},
			Hysteresis: healthsvc.Hysteresis{ClearRatio: 1.5}}, []string{"ErrorRate: 2 is above 1", "ClearRatio"}},
		{"channel", healthsvc.Config{Checkers: ok, Channel: "pigeon"}, []string{`unknown channel "pigeon"`}},
		{"recipient too long", healthsvc.Config{Checkers: ok, Recipient: strings.Repeat("r", 300)}, []string{"Recipient or UserID", "recipient"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			_, newErr := healthsvc.New(tc.cfg)
			if len(tc.want) == 0 {
				if err != nil || newErr != nil {
					t.Fatalf("Validate: %v; New: %v", err, newErr)
				}
				return
			}
			if !errors.Is(err, healthsvc.ErrInvalidConfig) || !errors.Is(newErr, healthsvc.ErrInvalidConfig) {
				t.Fatalf("Validate: %v; New: %v; want ErrInvalidConfig", err, newErr)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

// signalledChecker reports each Health call on a channel.
type signalledChecker struct{ calls chan struct{} }

func (c signalledChecker) Health(ctx context.Context) (*broker.HealthReport, error) {
	select {
	case c.calls <- struct{}{}:
	default:
	}
	return &broker.HealthReport{Backend: "fake", Status: broker.HealthHealthy}, nil
}

// TestRun runs rounds until ctx ends, then returns nil and leaves no
// goroutine behind.
func TestRun(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	c := signalledChecker{calls: make(chan struct{}, 1)}
	s, pub := newService(t, healthsvc.Config{Checkers: map[string]broker.HealthChecker{"fake": c}, Interval: 10 * time.Millisecond, Clock: time.Now}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	for i := range 3 {
		select {
		case <-c.calls:
		case <-time.After(waitTimeout):
			t.Fatalf("round %d did not happen", i)
		}
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not return after cancel")
	}
	if st := s.Stats(); st.Rounds < 2 || st.HealthEventsPublished < 2*2 || pub.Count() == 0 {
		t.Fatalf("stats %+v after 3 rounds", st)
	}
}
