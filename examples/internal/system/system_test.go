package system_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/orchestrator"
	"github.com/cosmic-horizons/events/examples/internal/platform"
	"github.com/cosmic-horizons/events/examples/internal/system"
	"github.com/cosmic-horizons/events/testkit/rabbittest"
)

// runSystem runs n jobs on p and checks the outcome against the
// orchestrator's own record.
func runSystem(t *testing.T, p *platform.Platform, n int) system.Summary {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sys, err := system.Start(ctx, system.Config{
		Platform: p, Jobs: n, Settle: 60 * time.Second, AuditDir: t.TempDir(),
		Sim: orchestrator.SimConfig{Seed: 42, FailureRatio: 0.1, Speed: 0},
	})
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		sys.Stop(sctx)
	})
	sum, err := sys.Run(ctx)
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var b strings.Builder
	sum.Print(&b)
	t.Log(b.String())

	if !sum.OK() {
		t.Fatalf("run not OK: lost %d, order violations %v, audit %v, %d of %d jobs terminal", sum.Lost, sum.Order, sum.AuditVerified, sum.Probe.Terminal, n)
	}
	for _, c := range sum.Services {
		if c.Consumed >= 0 && c.Expected == 0 {
			t.Errorf("%s expected nothing: the run published nothing for it", c.Service)
		}
	}
	// The metrics service's aggregates equal the orchestrator's own truth.
	truth := map[string]int{}
	for _, j := range sys.Services.Orchestrator.List() {
		truth[string(j.Status)]++
		if !j.Status.Terminal() {
			t.Errorf("job %s ended %s, want a terminal status", j.JobID, j.Status)
		}
	}
	got := sys.Services.Metrics.Summary()
	if len(got.JobsByState) != len(truth) {
		t.Errorf("metrics jobs by state %v, orchestrator %v", got.JobsByState, truth)
	}
	for st, n := range truth {
		if got.JobsByState[st] != n {
			t.Errorf("metrics: %d jobs %s, orchestrator: %d", got.JobsByState[st], st, n)
		}
	}
	if got.Jobs != n {
		t.Errorf("metrics saw %d jobs, want %d", got.Jobs, n)
	}
	// Events published without a confirmation in time (health events of a
	// round that ran out of time) may or may not be in the trail.
	if rec := int64(sum.AuditRecords); rec == 0 || rec < sum.Published || rec > sum.Published+sum.Unconfirmed {
		t.Errorf("audit trail verified %d records, %d durable events were published (and %d unconfirmed)", sum.AuditRecords, sum.Published, sum.Unconfirmed)
	}
	for ch, got := range sum.NotificationsDelivered {
		if got != int64(n) {
			t.Errorf("channel %s delivered %d notifications, want one per terminal job (%d)", ch, got, n)
		}
	}
	if len(sum.NotificationsDelivered) != 2 || sum.NotificationsEmitted != int64(2*n) {
		t.Errorf("notifications: %d emitted over %v, want %d over the log and push channels", sum.NotificationsEmitted, sum.NotificationsDelivered, 2*n)
	}
	if sum.JobsByState[eventmodels.StatusFailed] == 0 || sum.JobsByState[eventmodels.StatusCompleted] == 0 {
		t.Errorf("a 10%% failure ratio over %d jobs should give both outcomes, got %v", n, sum.JobsByState)
	}
	return sum
}

// TestEndToEndMemory: 200 jobs with both paths on the in-memory backend.
func TestEndToEndMemory(t *testing.T) {
	p, err := platform.Open(context.Background(), platform.Options{MemoryOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	runSystem(t, p, 200)
}

// TestEndToEndKafkaAndRabbitMQ: 200 jobs with the durable path on the
// in-process Kafka cluster and the real-time path on the local RabbitMQ.
func TestEndToEndKafkaAndRabbitMQ(t *testing.T) {
	url := rabbittest.URL(t)
	p, err := platform.Open(context.Background(), platform.Options{AMQPURLs: []string{url}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	sum := runSystem(t, p, 200)
	if sum.Probe.Realtime == 0 {
		t.Error("nothing arrived on the RabbitMQ real-time path")
	}
}
