package healthsvc_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
)

// TestBrokerDownOnError: a checker whose Health fails raises one critical
// broker_down alert and makes the round not ready; once it answers again,
// the alert clears after two good rounds.
func TestBrokerDownOnError(t *testing.T) {
	fc := &checker{}
	fc.set(nil, errors.New("dial tcp 10.0.0.1:9092: connection refused"))
	s, pub := newService(t, healthsvc.Config{Checkers: map[string]broker.HealthChecker{"kafka": fc}}, nil)
	rep := check(t, s)
	down := ofKind(rep.Raised, healthsvc.AlertBrokerDown)
	if len(down) != 1 || down[0].Backend != "kafka" || down[0].Severity != eventmodels.SeverityCritical ||
		!strings.Contains(down[0].Message, "connection refused") {
		t.Fatalf("raised %+v, want one critical broker_down for kafka saying why", rep.Raised)
	}
	if rep.Ready || len(rep.NotReady) != 1 || !strings.Contains(rep.NotReady[0], "connection refused") {
		t.Fatalf("ready %v, reasons %q; want not ready because of the refused connection", rep.Ready, rep.NotReady)
	}
	if rep.Status != broker.HealthUnhealthy || rep.Backends[0].Err == "" {
		t.Errorf("status %s, backend %+v; want unhealthy with the error", rep.Status, rep.Backends[0])
	}
	check(t, s)
	fc.set(healthyReport(3, "g", "t", 0), nil)
	if rep := check(t, s); len(rep.Cleared) != 0 || !rep.Ready {
		t.Fatalf("first good round: cleared %+v, ready %v; want no clear yet but ready", rep.Cleared, rep.Ready)
	}
	if rep := check(t, s); len(ofKind(rep.Cleared, healthsvc.AlertBrokerDown)) != 1 {
		t.Fatalf("second good round cleared %+v, want broker_down", rep.Cleared)
	}
	wantFiringThenResolved(t, notifications(pub), healthsvc.AlertBrokerDown, eventmodels.SeverityCritical)
}

// hangingChecker never answers until released, ignoring its ctx.
type hangingChecker struct{ release chan struct{} }

func (h hangingChecker) Health(context.Context) (*broker.HealthReport, error) {
	<-h.release
	return nil, errors.New("released")
}

// TestCheckTimeout: a checker that does not answer within CheckTimeout
// counts as unreachable, and the others are judged anyway.
func TestCheckTimeout(t *testing.T) {
	h := hangingChecker{release: make(chan struct{})}
	t.Cleanup(func() { close(h.release) })
	good := newMemory(t, memory.Config{})
	s, _ := newService(t, healthsvc.Config{
		Checkers:     map[string]broker.HealthChecker{"stuck": h, "memory": good},
		CheckTimeout: 100 * time.Millisecond,
		Clock:        time.Now,
	}, nil)
	rep := check(t, s)
	down := ofKind(rep.Raised, healthsvc.AlertBrokerDown)
	if len(down) != 1 || down[0].Backend != "stuck" || !strings.Contains(down[0].Message, "no answer within") {
		t.Fatalf("raised %+v, want broker_down for stuck (no answer)", rep.Raised)
	}
	if len(rep.Backends) != 2 || rep.Backends[0].Name != "memory" || rep.Backends[0].Status != broker.HealthHealthy {
		t.Fatalf("backends %+v, want memory healthy first", rep.Backends)
	}
}

// TestCancelledRoundChangesNothing: a round whose ctx ends returns the
// error and raises nothing, even though every probe failed.
func TestCancelledRoundChangesNothing(t *testing.T) {
	b := newMemory(t, memory.Config{})
	s, pub := newService(t, healthsvc.Config{Checkers: map[string]broker.HealthChecker{"memory": b}}, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Check(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Check with a cancelled ctx: %v, want context.Canceled", err)
	}
	if st := s.Stats(); st.Rounds != 0 || st.AlertsRaised != 0 || pub.Count() != 0 {
		t.Fatalf("stats %+v, %d published; want nothing", st, pub.Count())
	}
	if _, ok := s.Last(); ok {
		t.Fatal("a cancelled round left a report")
	}
}

// TestMemoryClosed: a closed memory broker reports itself unhealthy, which
// is broker_down.
func TestMemoryClosed(t *testing.T) {
	b := newMemory(t, memory.Config{})
	s, _ := newService(t, healthsvc.Config{Checkers: map[string]broker.HealthChecker{"memory": b}}, nil)
	if rep := check(t, s); len(rep.Raised) != 0 || !rep.Ready {
		t.Fatalf("open broker: raised %+v, ready %v", rep.Raised, rep.Ready)
	}
	_ = b.Close()
	rep := check(t, s)
	if down := ofKind(rep.Raised, healthsvc.AlertBrokerDown); len(down) != 1 || !strings.Contains(down[0].Message, "closed") {
		t.Fatalf("raised %+v, want broker_down saying closed", rep.Raised)
	}
}

// TestCheckFailedAndDegradedConnection: a missing queue is a check_failed
// alert and a RabbitMQ connection blocked by a disk alarm a disk_usage
// alert, neither broker_down; both keep the backend ready (its status is
// the worst of its checks); dead-letter queue depths are summed.
func TestCheckFailedAndDegradedConnection(t *testing.T) {
	fc := &checker{}
	rep := &broker.HealthReport{Backend: "rabbitmq", Status: broker.HealthDegraded, Checks: []broker.HealthCheck{
		{Name: "rabbitmq publisher connection", Status: broker.HealthDegraded, Message: "connected to n1; publishing blocked by the broker: low on disk"},
		{Name: "rabbitmq subscriber connection", Status: broker.HealthHealthy},
		{Name: "rabbitmq queue q1", Status: broker.HealthUnhealthy, Message: "NOT_FOUND"},
		{Name: "rabbitmq dead letters q1.dlq", Status: broker.HealthHealthy, Value: 3},
		{Name: "rabbitmq dead letters q2.dlq", Status: broker.HealthHealthy, Value: 4},
		{Name: "rabbitmq queues", Status: broker.HealthUnknown, Message: "timeout"},
	}}
	fc.set(rep, nil)
	s, _ := newService(t, healthsvc.Config{Checkers: map[string]broker.HealthChecker{"rabbitmq": fc}}, nil)
	got := check(t, s)
	failed := ofKind(got.Raised, healthsvc.AlertCheckFailed)
	disk := ofKind(got.Raised, healthsvc.AlertDiskUsage)
	if len(failed) != 1 || len(disk) != 1 || len(got.Raised) != 2 || failed[0].Subject != "rabbitmq queue q1" ||
		disk[0].Subject != "rabbitmq publisher connection disk alarm" {
		t.Fatalf("raised %+v, want check_failed for the queue and disk_usage for the blocked connection", got.Raised)
	}
	if !strings.Contains(disk[0].Message, "low on disk") {
		t.Errorf("alert message %q does not say why", disk[0].Message)
	}
	if !got.Ready || got.Backends[0].DeadLetters != 7 || got.Backends[0].Status != broker.HealthUnhealthy || got.Backends[0].Down {
		t.Fatalf("ready %v, backend %+v; want ready (reachable), 7 dead letters, unhealthy (the queue)", got.Ready, got.Backends[0])
	}
	// The unknown check neither starts nor clears anything; the healthy
	// connection and queue clear their alerts.
	rep.Checks[0].Status, rep.Checks[2].Status = broker.HealthHealthy, broker.HealthHealthy
	check(t, s)
	if got := check(t, s); len(got.Cleared) != 2 || len(got.Active) != 0 {
		t.Fatalf("cleared %+v, active %+v; want check_failed and disk_usage cleared", got.Cleared, got.Active)
	}
}

// TestExpectedBrokers: a Kafka cluster answering with fewer brokers than
// configured raises broker_down (severity error: degraded, not down) while
// staying ready.
func TestExpectedBrokers(t *testing.T) {
	fc := &checker{}
	fc.set(healthyReport(2, "g", "t", 0), nil)
	s, _ := newService(t, healthsvc.Config{
		Checkers:        map[string]broker.HealthChecker{"kafka": fc},
		ExpectedBrokers: map[string]int{"kafka": 3},
	}, nil)
	rep := check(t, s)
	down := ofKind(rep.Raised, healthsvc.AlertBrokerDown)
	if len(down) != 1 || down[0].Severity != eventmodels.SeverityError || !strings.Contains(down[0].Message, "2 of 3 expected brokers") ||
		down[0].Value != 2 || down[0].Threshold != 3 {
		t.Fatalf("raised %+v, want broker_down (error) for 2 of 3 brokers, value 2 (brokers answering), threshold 3", rep.Raised)
	}
	if !rep.Ready || rep.Backends[0].Status != broker.HealthDegraded || !rep.Backends[0].Degraded {
		t.Fatalf("ready %v, backend %+v; want ready but degraded", rep.Ready, rep.Backends[0])
	}
	if r := s.Readiness(); !r.Ready || len(r.Degraded) != 1 {
		t.Fatalf("readiness %+v, want ready with the degradation listed", r)
	}
}

// TestClusterAlerts: a RabbitMQ cluster with a node down is broker_down
// (error, value = nodes answering) though its clients are connected;
// every node down is broker_down critical with value 0; a lopsided
// partition leadership is partition_imbalance, a full Kafka log volume
// disk_usage, and a log-dirs check the brokers cannot answer raises
// nothing. Each clears when its condition ends.
func TestClusterAlerts(t *testing.T) {
	conn := broker.HealthCheck{Name: "rabbitmq publisher connection", Status: broker.HealthHealthy}
	rabbit := &checker{}
	rabbit.set(&broker.HealthReport{Status: broker.HealthDegraded, Checks: []broker.HealthCheck{conn,
		{Name: "rabbitmq nodes", Status: broker.HealthDegraded, Value: 2, Message: "2 of 3 configured nodes reachable"}}}, nil)
	kafka := &checker{}
	kafka.set(&broker.HealthReport{Status: broker.HealthHealthy, Checks: []broker.HealthCheck{
		{Name: "brokers", Status: broker.HealthHealthy, Value: 3},
		{Name: "leaders", Status: broker.HealthHealthy, Value: 2.5, Message: "broker 0 leads everything"},
		{Name: "log dirs", Status: broker.HealthHealthy, Value: 91, Message: "fullest log directory broker 1 /data: 91.0 % used"},
	}}, nil)
	s, _ := newService(t, healthsvc.Config{Checkers: map[string]broker.HealthChecker{"rabbitmq": rabbit, "kafka": kafka}}, nil)
	rep := check(t, s)
	down := ofKind(rep.Raised, healthsvc.AlertBrokerDown)
	if len(down) != 1 || down[0].Backend != "rabbitmq" || down[0].Severity != eventmodels.SeverityError || down[0].Value != 2 || !rep.Ready {
		t.Fatalf("raised %+v, ready %v; want broker_down (error, value 2) for rabbitmq, still ready", rep.Raised, rep.Ready)
	}
	if im := ofKind(rep.Raised, healthsvc.AlertPartitionImbalance); len(im) != 1 || im[0].Value != 2.5 || im[0].Threshold != healthsvc.DefaultImbalance {
		t.Errorf("raised %+v, want partition_imbalance 2.5 over 2", rep.Raised)
	}
	if du := ofKind(rep.Raised, healthsvc.AlertDiskUsage); len(du) != 1 || du[0].Value != 91 || du[0].Threshold != healthsvc.DefaultDiskUsage {
		t.Errorf("raised %+v, want disk_usage 91 over 80", rep.Raised)
	}

	// Every node down: the same alert, now critical in its figures.
	down0 := conn
	down0.Status = broker.HealthUnhealthy
	rabbit.set(&broker.HealthReport{Status: broker.HealthUnhealthy, Checks: []broker.HealthCheck{down0,
		{Name: "rabbitmq nodes", Status: broker.HealthUnhealthy, Value: 0}}}, nil)
	rep = check(t, s)
	if len(rep.Raised) != 0 || rep.Ready {
		t.Fatalf("raised %+v, ready %v; want nothing new (the same broker_down), not ready", rep.Raised, rep.Ready)
	}
	for _, a := range rep.Active {
		if a.Kind == healthsvc.AlertBrokerDown && a.Value != 0 {
			t.Errorf("broker_down value %v with no node answering, want 0", a.Value)
		}
	}

	// All healed; the log volume unknown (a broker that does not report it).
	rabbit.set(&broker.HealthReport{Status: broker.HealthHealthy, Checks: []broker.HealthCheck{conn,
		{Name: "rabbitmq nodes", Status: broker.HealthHealthy, Value: 3}}}, nil)
	kafka.set(&broker.HealthReport{Status: broker.HealthHealthy, Checks: []broker.HealthCheck{
		{Name: "brokers", Status: broker.HealthHealthy, Value: 3},
		{Name: "leaders", Status: broker.HealthHealthy, Value: 1},
		{Name: "log dirs", Status: broker.HealthHealthy, Value: 10},
	}}, nil)
	check(t, s)
	if rep = check(t, s); len(rep.Cleared) != 3 || len(rep.Active) != 0 {
		t.Fatalf("cleared %+v, active %+v; want the three cleared", rep.Cleared, rep.Active)
	}
	kafka.set(&broker.HealthReport{Status: broker.HealthUnknown, Checks: []broker.HealthCheck{
		{Name: "brokers", Status: broker.HealthHealthy, Value: 3},
		{Name: "log dirs", Status: broker.HealthHealthy, Value: -1, Message: "the brokers do not report the size of their log volumes"},
	}}, nil)
	if rep = check(t, s); len(rep.Raised) != 0 {
		t.Fatalf("raised %+v for a log-dirs check without a figure, want nothing", rep.Raised)
	}
}

// TestEventsDropped: a service that dropped events in the window raises
// events_dropped; a window without drops clears it.
func TestEventsDropped(t *testing.T) {
	clk := newClock()
	rec := healthsvc.NewRecorder(healthsvc.RecorderConfig{Clock: clk.Now})
	s, _ := newService(t, healthsvc.Config{Signals: rec, Thresholds: healthsvc.Thresholds{Window: 5 * time.Second}}, clk)
	rec.RecordDropped("orchestrator", 3)
	rec.RecordOutcome("notification-service/webhook", errors.New("404"), true)
	rep := check(t, s)
	if d := ofKind(rep.Raised, healthsvc.AlertEventsDropped); len(d) != 1 || d[0].Subject != "orchestrator" || d[0].Value != 3 {
		t.Fatalf("raised %+v, want events_dropped 3 for orchestrator", rep.Raised)
	}
	for _, sig := range rep.Services {
		if sig.Service == "notification-service/webhook" && (sig.Failed != 1 || sig.DeadLettered != 1 || sig.DeadLetteredTotal != 1) {
			t.Errorf("webhook signals %+v, want 1 failed and dead-lettered", sig)
		}
	}
	clk.Advance(10 * time.Second)
	check(t, s)
	if rep = check(t, s); len(ofKind(rep.Cleared, healthsvc.AlertEventsDropped)) != 1 {
		t.Fatalf("cleared %+v, active %+v; want events_dropped cleared a window later", rep.Cleared, rep.Active)
	}
}
