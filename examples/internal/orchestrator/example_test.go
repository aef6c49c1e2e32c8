package orchestrator_test

import (
	"context"
	"fmt"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/orchestrator"
)

// A job submitted to an orchestrator on the in-memory backend, run by the
// simulator in its deterministic mode (Speed 0): the seed fixes the outcome.
func Example() {
	ctx := context.Background()
	mem, err := memory.New(ctx, memory.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mem.Close()
	durable, _ := events.NewBus(mem)
	svc, err := orchestrator.New(orchestrator.Config{
		Durable: durable,
		Sim:     orchestrator.SimConfig{Seed: 1, Speed: 0, ProgressSteps: 2},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer svc.Shutdown(ctx)

	job, err := svc.Submit(ctx, "alice", eventmodels.JobSpec{
		ProjectID: "m87-imaging", Telescope: "EHT", Queue: "gpu",
		Resources: eventmodels.Resources{CPUCores: 8, GPUs: 2, MemoryMB: 65536, WalltimeSeconds: 7200},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = svc.Wait(ctx)

	// Every transition is on job-lifecycle, keyed by the job ID.
	_ = mem.Replay(ctx, eventmodels.TopicJobLifecycle, func(_ context.Context, m *broker.Message) error {
		e, err := durable.Decode(m)
		if err != nil {
			return err
		}
		fmt.Println(m.Key, e.Envelope().EventType)
		return nil
	})
	v, _ := svc.Get(job.JobID)
	fmt.Println(v.Status, v.Progress)
	// Output:
	// job-000001 job.submitted
	// job-000001 job.queued
	// job-000001 job.status_changed
	// job-000001 job.status_changed
	// job-000001 job.completed
	// completed 100
}
