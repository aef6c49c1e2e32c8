package healthsvc_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
	"github.com/cosmic-horizons/events/testkit"
)

// waitTimeout bounds every wait for an outcome in these tests.
const waitTimeout = 30 * time.Second

// clock is a settable clock for deterministic windows and timestamps.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock {
	return &clock{now: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// checker is a HealthChecker whose next answer the test sets.
type checker struct {
	mu  sync.Mutex
	rep *broker.HealthReport
	err error
}

func (c *checker) Health(ctx context.Context) (*broker.HealthReport, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return nil, c.err
	}
	cp := *c.rep
	return &cp, nil
}

func (c *checker) set(rep *broker.HealthReport, err error) {
	c.mu.Lock()
	c.rep, c.err = rep, err
	c.mu.Unlock()
}

// healthyReport is a Kafka-like report: brokers answering, and one group's
// lag on one topic spread over two partitions.
func healthyReport(brokers int, group, topic string, lag int64) *broker.HealthReport {
	return &broker.HealthReport{
		Backend: "fake", Status: broker.HealthHealthy,
		Checks: []broker.HealthCheck{
			{Name: "brokers", Status: broker.HealthHealthy, Value: float64(brokers), Message: "all reachable"},
			{Name: "controller", Status: broker.HealthHealthy, Value: 1},
		},
		Lag: []broker.GroupLag{
			{Group: group, Topic: topic, Partition: 0, Lag: lag / 2},
			{Group: group, Topic: topic, Partition: 1, Lag: lag - lag/2},
		},
	}
}

// newMemory returns an embedded broker of cfg, closed when the test ends.
func newMemory(t *testing.T, cfg memory.Config) *memory.Backend {
	t.Helper()
	b, err := memory.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

// signals is a SignalSource whose figures the test sets.
type signals struct {
	mu  sync.Mutex
	sig []healthsvc.ServiceSignals
}

func (s *signals) Signals(time.Duration) []healthsvc.ServiceSignals {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]healthsvc.ServiceSignals(nil), s.sig...)
}

func (s *signals) set(sig ...healthsvc.ServiceSignals) {
	s.mu.Lock()
	s.sig = sig
	s.mu.Unlock()
}

// newService returns a service publishing to a MockPublisher, with the
// clock c (nil: a fresh one).
func newService(t *testing.T, cfg healthsvc.Config, c *clock) (*healthsvc.Service, *testkit.MockPublisher) {
	t.Helper()
	pub := testkit.NewMockPublisher()
	bus, err := events.NewBus(pub)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Publisher = bus
	if c == nil {
		c = newClock()
	}
	if cfg.Clock == nil {
		cfg.Clock = c.Now
	}
	s, err := healthsvc.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s, pub
}

// check runs one round and fails the test on error.
func check(t *testing.T, s *healthsvc.Service) healthsvc.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	rep, err := s.Check(ctx)
	if err != nil {
		t.Fatalf("Check: %v", err)
	}
	return rep
}

// notifications returns the alert notifications published, in order.
func notifications(pub *testkit.MockPublisher) []*eventmodels.Notification {
	return testkit.EventsOf[*eventmodels.Notification](pub)
}

// ofKind keeps the alerts of one kind.
func ofKind(as []healthsvc.Alert, kind healthsvc.AlertKind) []healthsvc.Alert {
	var out []healthsvc.Alert
	for _, a := range as {
		if a.Kind == kind {
			out = append(out, a)
		}
	}
	return out
}

// notesOf keeps the notifications of one alert kind, firing and resolved.
func notesOf(ns []*eventmodels.Notification, kind healthsvc.AlertKind) []*eventmodels.Notification {
	var out []*eventmodels.Notification
	for _, n := range ns {
		if strings.HasPrefix(n.Category, healthsvc.CategoryPrefix+string(kind)) {
			out = append(out, n)
		}
	}
	return out
}

// wantFiringThenResolved checks that ns is exactly one start and one
// clear of kind, in that order.
func wantFiringThenResolved(t *testing.T, ns []*eventmodels.Notification, kind healthsvc.AlertKind, sev eventmodels.Severity) {
	t.Helper()
	ns = notesOf(ns, kind)
	if len(ns) != 2 {
		for _, n := range ns {
			t.Logf("notification %s %s: %s", n.Category, n.Severity, n.Title)
		}
		t.Fatalf("%d %s notifications, want one start and one clear", len(ns), kind)
	}
	first, second := ns[0], ns[1]
	if first.Category != healthsvc.CategoryPrefix+string(kind) || first.Severity != sev || !strings.HasPrefix(first.Title, "[FIRING]") {
		t.Errorf("start notification = %s/%s %q, want category alert.%s, severity %s, [FIRING]", first.Category, first.Severity, first.Title, kind, sev)
	}
	if second.Category != healthsvc.CategoryPrefix+string(kind)+healthsvc.CategoryResolved || second.Severity != eventmodels.SeverityInfo ||
		!strings.HasPrefix(second.Title, "[RESOLVED]") {
		t.Errorf("clear notification = %s/%s %q, want category alert.%s.resolved, severity info, [RESOLVED]", second.Category, second.Severity, second.Title, kind)
	}
	for _, n := range ns {
		if err := n.Validate(); err != nil {
			t.Errorf("notification %q invalid: %v", n.Title, err)
		}
	}
}
