package healthsvc_test

import (
	"context"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
)

// stuckSubscription starts a memory subscription whose handler holds its
// first message until release is closed, and returns once the handler
// holds it.
func stuckSubscription(t *testing.T, b *memory.Backend, topic, group string) (release chan struct{}) {
	t.Helper()
	release = make(chan struct{})
	entered := make(chan struct{}, 1)
	c, err := b.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: group},
		func(ctx context.Context, m *broker.Message) error {
			select {
			case entered <- struct{}{}:
			default:
			}
			select {
			case <-release:
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	if err := b.Publish(context.Background(), &broker.Message{Topic: topic, Key: "k", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-entered:
	case <-time.After(waitTimeout):
		t.Fatal("handler not called")
	}
	return release
}

// heldLongerThan waits until b's Health shows group holding a message for
// longer than d.
func heldLongerThan(t *testing.T, b *memory.Backend, group string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		r, err := b.Health(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range r.InFlight {
			if f.Group == group && f.Messages > 0 && f.OldestAge > d {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Health never showed %s holding a message for %v: %+v", group, d, r.InFlight)
		}
		<-tick.C
	}
}

// TestStuckConsumerAlert: a handler that does not return raises
// consumer_stuck for its group and topic (while the backend reports no
// lag at all), and the alert clears once it returns.
func TestStuckConsumerAlert(t *testing.T) {
	b := newMemory(t, memory.Config{})
	release := stuckSubscription(t, b, "health-stuck", "slow")
	const threshold = 30 * time.Millisecond
	s, pub := newService(t, healthsvc.Config{Checkers: map[string]broker.HealthChecker{"memory": b},
		Thresholds: healthsvc.Thresholds{Stuck: threshold}}, nil)
	heldLongerThan(t, b, "slow", threshold)
	rep := check(t, s)
	stuck := ofKind(rep.Raised, healthsvc.AlertConsumerStuck)
	if len(stuck) != 1 || stuck[0].Subject != "slow/health-stuck" || stuck[0].Backend != "memory" || stuck[0].Value <= threshold.Seconds() {
		t.Fatalf("raised %+v, want one consumer_stuck alert on slow/health-stuck above %v", rep.Raised, threshold)
	}
	if len(rep.Backends) != 1 || len(rep.Backends[0].InFlight) != 1 || rep.Backends[0].InFlight[0].Messages != 1 {
		t.Fatalf("backend report %+v, want the message in flight", rep.Backends)
	}
	close(release)
	deadline := time.Now().Add(waitTimeout)
	var cleared []healthsvc.Alert
	for len(cleared) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("consumer_stuck never cleared after the handler returned")
		}
		cleared = ofKind(check(t, s).Cleared, healthsvc.AlertConsumerStuck)
	}
	wantFiringThenResolved(t, notifications(pub), healthsvc.AlertConsumerStuck, "error")
}

// TestStuckConsumerFromSignals: another process's signals (WithInFlight
// over its backend, read through /signals) raise consumer_stuck for the
// service.
func TestStuckConsumerFromSignals(t *testing.T) {
	b := newMemory(t, memory.Config{})
	release := stuckSubscription(t, b, "health-stuck-remote", "audit")
	defer close(release)
	heldLongerThan(t, b, "audit", 20*time.Millisecond)
	src := healthsvc.WithInFlight(&signals{}, map[string]broker.HealthChecker{"memory": b}, time.Second)
	sigs := src.Signals(time.Minute)
	if len(sigs) != 1 || sigs[0].Service != "audit" || sigs[0].InFlight != 1 || sigs[0].OldestInFlight <= 20*time.Millisecond {
		t.Fatalf("signals %+v, want audit holding one message for over 20ms", sigs)
	}
	s, _ := newService(t, healthsvc.Config{Signals: src, Thresholds: healthsvc.Thresholds{Stuck: 10 * time.Millisecond}}, nil)
	rep := check(t, s)
	if stuck := ofKind(rep.Raised, healthsvc.AlertConsumerStuck); len(stuck) != 1 || stuck[0].Subject != "audit" || stuck[0].Backend != "" {
		t.Fatalf("raised %+v, want consumer_stuck on service audit", rep.Raised)
	}
}
