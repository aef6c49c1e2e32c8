package dashboard_test

import (
	"fmt"
	"time"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/dashboard"
)

// The dashboard folds lifecycle events into one state per job; an event
// that arrives late or twice never moves a job back.
func Example() {
	d, err := dashboard.New(dashboard.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer d.Close()
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := func(s int) eventmodels.Option {
		return eventmodels.WithClock(func() time.Time { return t0.Add(time.Duration(s) * time.Second) })
	}
	spec := eventmodels.JobSpec{ProjectID: "deep-field", Telescope: "vla", Queue: "standard", JobName: "calibrate",
		Resources: eventmodels.Resources{CPUCores: 8, MemoryMB: 4096, WalltimeSeconds: 3600}}
	running := eventmodels.NewJobStatusChanged("ann", "job-1", eventmodels.StatusQueued, eventmodels.StatusRunning, 0, at(5))
	running.Node = "hpc-node-03"

	d.Observe(eventmodels.NewJobSubmitted("ann", "job-1", spec, at(0)))
	d.Observe(running)
	d.Observe(eventmodels.NewJobCompleted("ann", "job-1", eventmodels.Usage{Progress: 100}, at(65)))
	d.Observe(eventmodels.NewJobQueued("ann", "job-1", "standard", 1, at(1))) // late: ignored

	for _, j := range d.Jobs() {
		fmt.Println(j.JobID, j.JobName, j.Status, j.Progress, j.Node, j.Duration(time.Time{}))
	}
	// Output:
	// job-1 calibrate completed 100 hpc-node-03 1m0s
}
