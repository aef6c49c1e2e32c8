package metricsvc_test

import (
	"fmt"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/metricsvc"
)

// The service's aggregates after one job's events, one of them delivered
// twice. In a program, Subscribe feeds it from job-lifecycle and
// job-metrics, and HTTPHandler serves the same figures.
func Example() {
	svc, err := metricsvc.New(metricsvc.Config{})
	if err != nil {
		fmt.Println(err)
		return
	}
	usage := eventmodels.Usage{CPUHours: 16, GPUHours: 4, RuntimeMS: 7_200_000, QueueWaitMS: 90_000, Progress: 100}
	metrics := eventmodels.NewJobMetrics("alice", "job-000001", "m87-imaging", usage)
	for _, e := range []eventmodels.Event{
		eventmodels.NewJobQueued("alice", "job-000001", "gpu", 3),
		metrics,
		metrics, // redelivered: ignored
		eventmodels.NewJobCompleted("alice", "job-000001", usage),
	} {
		svc.Observe(e)
	}
	s := svc.Summary()
	fmt.Println("events:", s.Events, "duplicates:", s.Duplicates)
	fmt.Println("jobs:", s.JobsByState)
	fmt.Println("CPU hours:", s.CPUHoursByUser, s.CPUHoursByProject)
	fmt.Printf("runtime P50: %.3g h (histograms keep 3 significant digits)\n", s.RuntimeMS.P50/3.6e6)
	// Output:
	// events: 3 duplicates: 1
	// jobs: map[completed:1]
	// CPU hours: map[alice:16] map[m87-imaging:16]
	// runtime P50: 2 h (histograms keep 3 significant digits)
}
