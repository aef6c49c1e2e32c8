// Package samples builds one valid event of every built-in type, filled in
// every field, for tests, benchmarks and the example programs.
package samples

import (
	"time"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/google/uuid"
)

// Epoch is the fixed time the samples carry.
var Epoch = time.Date(2026, 3, 1, 12, 30, 45, 123_000_000, time.UTC)

// Clock returns Epoch.
func Clock() time.Time { return Epoch }

// Correlation is the correlation ID every sample shares.
var Correlation = uuid.MustParse("0190f1c2-3b4a-7c5d-8e6f-102030405060")

// All returns one event of each built-in type, in registry order of the
// job lifecycle, then metrics, notification, audit and health.
func All() []eventmodels.Event {
	opts := []eventmodels.Option{eventmodels.WithClock(Clock), eventmodels.WithCorrelationID(Correlation)}
	const user, job = "astro-user-7", "job-000042"
	metrics := eventmodels.NewJobMetrics(user, job, "proj-vlass", eventmodels.Usage{
		CPUHours: 12.5, GPUHours: 3.25, MemoryPeakMB: 48_000,
		RuntimeMS: 5_400_000, QueueWaitMS: 90_000, Progress: 64.5,
	}, opts...)
	metrics.Node = "hpc-node-17"
	completed := eventmodels.NewJobCompleted(user, job, eventmodels.Usage{
		CPUHours: 16, GPUHours: 4, MemoryPeakMB: 51_200, RuntimeMS: 7_200_000, QueueWaitMS: 90_000, Progress: 100,
	}, opts...)
	completed.OutputURI = "s3://cosmic/results/job-000042/"
	failed := eventmodels.NewJobFailed(user, job, eventmodels.StatusRunning, eventmodels.ErrorOutOfMemory, "process killed: memory limit 64 GiB exceeded", opts...)
	failed.ExitCode, failed.Retryable, failed.RuntimeMS = 137, true, 1_800_000
	changed := eventmodels.NewJobStatusChanged(user, job, eventmodels.StatusRunning, eventmodels.StatusRunning, 42.5, opts...)
	changed.Message, changed.Node = "imaging pass 2 of 5", "hpc-node-17"
	queued := eventmodels.NewJobQueued(user, job, "gpu-large", 3, opts...)
	queued.EstimatedWaitMS = 120_000
	note := eventmodels.NewNotification(user, "astro-user-7@example.org", eventmodels.ChannelEmail, eventmodels.SeverityInfo,
		"Job job-000042 completed", "Your imaging job finished in 2h0m; results are ready.", opts...)
	note.Category, note.JobID = "job.completed", job
	audit := eventmodels.NewAudit(user, "job.submit", eventmodels.Resource{Type: "job", ID: job}, eventmodels.OutcomeSuccess, opts...)
	audit.Details = eventmodels.LabelsOf(map[string]string{"ip": "10.1.2.3", "client": "cli/2.1"})
	return []eventmodels.Event{
		eventmodels.NewJobSubmitted(user, job, eventmodels.JobSpec{
			ProjectID: "proj-vlass", Telescope: "VLA", Instrument: "WIDAR", JobName: "vlass-epoch3-tile-17",
			Queue: "gpu-large", Priority: 5,
			Resources:  eventmodels.Resources{CPUCores: 32, GPUs: 2, MemoryMB: 65_536, WalltimeSeconds: 14_400},
			Parameters: eventmodels.LabelsOf(map[string]string{"field": "T17", "band": "S", "ünïcode": "✓"}),
		}, opts...),
		queued,
		changed,
		completed,
		failed,
		eventmodels.NewJobCancelled(user, job, eventmodels.StatusQueued, "superseded by job-000043", opts...),
		metrics,
		note,
		audit,
		eventmodels.NewSystemHealth("health-service", "kafka", eventmodels.HealthDegraded, 4.75, []eventmodels.HealthCheck{
			{Name: "brokers_reachable", Status: eventmodels.HealthHealthy, Value: 3},
			{Name: "consumer_lag.metrics", Status: eventmodels.HealthDegraded, Message: "lag 1200 > 1000", Value: 1200},
		}, opts...),
	}
}
