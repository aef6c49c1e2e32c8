// Package orchestrator is the JobOrchestratorService of the reference system:
// it accepts job submissions over HTTP, drives each job through its
// lifecycle on a simulated HPC executor, and publishes every transition.
//
// Durable path: every lifecycle event goes to job-lifecycle and periodic
// job.metrics to job-metrics (Kafka in production, keyed by job ID so a job's
// events stay in order). Real-time path: the same lifecycle events go to the
// real-time bus (RabbitMQ or the in-memory bus) for dashboards. One
// correlation ID follows a job through every event.
//
// A job advances only after its transition is confirmed on the durable path:
// a publish failure makes the job wait and retry with backoff, and the API
// shows it as degraded; no transition is lost. The wait is bounded
// (Config.PublishAttempts): a job whose event is still unconfirmed after it,
// or is rejected by the bus as invalid, ends failed with the cause as its
// reason instead of staying running and degraded for ever. The real-time
// path is best effort (a few retries, then counted and logged), because
// dashboards resync from the API.
//
// The API refuses resources outside MaxCPUCores, MaxGPUs, MaxMemoryMB and
// MaxWalltimeSeconds with a 400 naming the field and the bound.
//
// On start, Restore replays job-lifecycle and resumes every unfinished job
// from its last published transition, so a restart neither loses nor repeats
// transitions.
package orchestrator
