package system_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/orchestrator"
	"github.com/cosmic-horizons/events/examples/internal/platform"
	"github.com/cosmic-horizons/events/testkit"
)

// TestOrchestratorRestartResumesFromKafka: an orchestrator stopped with jobs
// in flight is replaced by a new instance that rebuilds them by replaying
// job-lifecycle from the (in-process) Kafka cluster and finishes them, with
// no transition published twice.
func TestOrchestratorRestartResumesFromKafka(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	p, err := platform.Open(ctx, platform.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	if p.Replayer == nil {
		t.Fatal("the Kafka backend does not implement broker.Replayer")
	}
	newOrch := func(speed float64) *orchestrator.Service {
		o, err := orchestrator.New(orchestrator.Config{
			Durable: p.Durable, Realtime: p.Realtime, Replayer: p.Replayer,
			Sim: orchestrator.SimConfig{Seed: 9, FailureRatio: 0.2, Speed: speed, QueueDelay: 2 * time.Second, RunTime: time.Hour},
		})
		if err != nil {
			t.Fatal(err)
		}
		return o
	}

	// A: jobs that would run for an hour: stopped mid-flight, once every
	// one has left "submitted".
	a := newOrch(1)
	const n = 20
	for i := range n {
		spec := eventmodels.JobSpec{ProjectID: "proj-restart", Telescope: "ALMA", Queue: "batch", Resources: eventmodels.Resources{CPUCores: 4, MemoryMB: 4096, WalltimeSeconds: 600}}
		if _, err := a.Submit(ctx, fmt.Sprintf("user-%d", i%3), spec); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(ctx, t, "every job past submitted on A", func() bool {
		for _, j := range a.List() {
			if j.Status == eventmodels.StatusSubmitted {
				return false
			}
		}
		return true
	})
	if err := a.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	// B: restores from Kafka and runs the jobs instantly.
	b := newOrch(0)
	rep, err := b.Restore(ctx)
	if err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if rep.Jobs != n || rep.Resumed != n || rep.Finished != 0 {
		t.Fatalf("Restore found %d jobs, resumed %d, finished %d; want %d, %d, 0 (%+v)", rep.Jobs, rep.Resumed, rep.Finished, n, n, rep)
	}
	if err := b.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	for _, j := range b.List() {
		if !j.Status.Terminal() {
			t.Errorf("job %s is %s after the restart, want terminal", j.JobID, j.Status)
		}
	}
	next, err := b.Submit(ctx, "user-after", eventmodels.JobSpec{ProjectID: "p", Telescope: "VLT", Queue: "batch", Resources: eventmodels.Resources{CPUCores: 1, MemoryMB: 1, WalltimeSeconds: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if next.JobID != fmt.Sprintf("job-%06d", n+1) {
		t.Errorf("first job after the restart is %s, want job-%06d (numbering continues)", next.JobID, n+1)
	}
	if err := b.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	// The log: every job's transitions once each, in a legal order.
	var mu sync.Mutex
	seen := map[string][]string{}
	status := map[string]eventmodels.JobStatus{}
	r := events.NewRouter()
	events.OnEvent(r, func(ctx context.Context, e eventmodels.Event) error {
		mu.Lock()
		defer mu.Unlock()
		id := e.Key()
		step := e.Envelope().EventType
		to, _ := eventmodels.StatusAfter(e)
		if sc, ok := e.(*eventmodels.JobStatusChanged); ok {
			step = fmt.Sprintf("%s %s→%s %.1f", step, sc.FromStatus, sc.ToStatus, sc.Progress)
		}
		for _, s := range seen[id] {
			if s == step {
				t.Errorf("job %s: %q published twice", id, step)
			}
		}
		seen[id] = append(seen[id], step)
		if from, ok := status[id]; ok && !eventmodels.CanTransition(from, to) {
			t.Errorf("job %s: illegal %s → %s", id, from, to)
		}
		status[id] = to
		return nil
	})
	h, err := p.Durable.Handler(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Replayer.Replay(ctx, eventmodels.TopicJobLifecycle, h); err != nil {
		t.Fatal(err)
	}
	if len(seen) != n+1 {
		t.Errorf("the log has %d jobs, want %d", len(seen), n+1)
	}
	for id, st := range status {
		if !st.Terminal() {
			t.Errorf("job %s ends %s in the log", id, st)
		}
	}
}
