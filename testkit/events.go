package testkit

import (
	"fmt"

	"github.com/cosmic-horizons/events/eventmodels"
)

// The entry points of an EventBuilder: one per built-in event type, each a
// Draft of a complete, valid event with the envelope from the builder's
// clock and stream and a payload drawn from plausible values.

// JobSubmitted starts a valid job.submitted event with a new job ID and a
// random spec (project, telescope, queue, resources, parameters).
func (b *EventBuilder) JobSubmitted() *Draft[*eventmodels.JobSubmitted] {
	d, done := b.next(eventmodels.TypeJobSubmitted, eventmodels.JobLifecycleSchemaVersion)
	defer done()
	return &Draft[*eventmodels.JobSubmitted]{&eventmodels.JobSubmitted{Base: d.base, JobID: b.newJobIDLocked(), Spec: randomSpec(d.r)}}
}

// JobQueued starts a valid job.queued event with a new job ID, a random
// queue, position and estimated wait.
func (b *EventBuilder) JobQueued() *Draft[*eventmodels.JobQueued] {
	d, done := b.next(eventmodels.TypeJobQueued, eventmodels.JobLifecycleSchemaVersion)
	defer done()
	return &Draft[*eventmodels.JobQueued]{&eventmodels.JobQueued{
		Base: d.base, JobID: b.newJobIDLocked(), Queue: pick(d.r, queues),
		Position: d.r.IntN(50), EstimatedWaitMS: int64(d.r.IntN(3_600_000)),
	}}
}

// JobStatusChanged starts a valid job.status_changed event: by default a
// progress report (running → running) of a new job ID with random progress
// and node.
func (b *EventBuilder) JobStatusChanged() *Draft[*eventmodels.JobStatusChanged] {
	d, done := b.next(eventmodels.TypeJobStatusChanged, eventmodels.JobLifecycleSchemaVersion)
	defer done()
	return &Draft[*eventmodels.JobStatusChanged]{&eventmodels.JobStatusChanged{
		Base: d.base, JobID: b.newJobIDLocked(),
		FromStatus: eventmodels.StatusRunning, ToStatus: eventmodels.StatusRunning,
		Progress: round2(d.r.Float64() * eventmodels.MaxProgress), Node: pick(d.r, nodes),
	}}
}

// JobCompleted starts a valid job.completed event of a new job ID: exit
// code 0, an output URI, random usage at 100% progress.
func (b *EventBuilder) JobCompleted() *Draft[*eventmodels.JobCompleted] {
	d, done := b.next(eventmodels.TypeJobCompleted, eventmodels.JobLifecycleSchemaVersion)
	defer done()
	return &Draft[*eventmodels.JobCompleted]{&eventmodels.JobCompleted{
		Base: d.base, JobID: b.newJobIDLocked(),
		OutputURI: fmt.Sprintf("s3://cosmic/results/run-%08x/", d.r.Uint32()),
		Usage:     randomUsage(d.r, eventmodels.MaxProgress),
	}}
}

// JobFailed starts a valid job.failed event of a new job ID that was
// running, with a random but consistent error class, exit code, message and
// retryability.
func (b *EventBuilder) JobFailed() *Draft[*eventmodels.JobFailed] {
	d, done := b.next(eventmodels.TypeJobFailed, eventmodels.JobLifecycleSchemaVersion)
	defer done()
	f := pick(d.r, failures)
	return &Draft[*eventmodels.JobFailed]{&eventmodels.JobFailed{
		Base: d.base, JobID: b.newJobIDLocked(), FromStatus: eventmodels.StatusRunning,
		ExitCode: f.code, ErrorClass: f.class, ErrorMessage: f.message, Retryable: f.retry,
		RuntimeMS: int64(d.r.IntN(7_200_000)),
	}}
}

// JobCancelled starts a valid job.cancelled event of a new job ID, from a
// random non-terminal status, with a reason; cancelled_by is the user.
func (b *EventBuilder) JobCancelled() *Draft[*eventmodels.JobCancelled] {
	d, done := b.next(eventmodels.TypeJobCancelled, eventmodels.JobLifecycleSchemaVersion)
	defer done()
	from := pick(d.r, []eventmodels.JobStatus{eventmodels.StatusSubmitted, eventmodels.StatusQueued, eventmodels.StatusRunning})
	return &Draft[*eventmodels.JobCancelled]{&eventmodels.JobCancelled{
		Base: d.base, JobID: b.newJobIDLocked(), FromStatus: from,
		Reason: pick(d.r, cancelWhy), CancelledBy: d.base.UserID,
	}}
}

// JobMetrics starts a valid job.metrics event of a new job ID with a random
// project, usage and node.
func (b *EventBuilder) JobMetrics() *Draft[*eventmodels.JobMetrics] {
	d, done := b.next(eventmodels.TypeJobMetrics, eventmodels.JobMetricsSchemaVersion)
	defer done()
	return &Draft[*eventmodels.JobMetrics]{&eventmodels.JobMetrics{
		Base: d.base, JobID: b.newJobIDLocked(), ProjectID: pick(d.r, projects),
		Usage: randomUsage(d.r, round2(d.r.Float64()*eventmodels.MaxProgress)), Node: pick(d.r, nodes),
	}}
}

// Notification starts a valid notification about a new job ID: the user's
// address as recipient, a random channel and severity, category
// "job.completed", a title and a message.
func (b *EventBuilder) Notification() *Draft[*eventmodels.Notification] {
	d, done := b.next(eventmodels.TypeNotification, eventmodels.NotificationSchemaVersion)
	defer done()
	job := b.newJobIDLocked()
	return &Draft[*eventmodels.Notification]{&eventmodels.Notification{
		Base: d.base, Recipient: d.base.UserID + "@example.org",
		Channel: pick(d.r, channels), Severity: pick(d.r, severities), Category: "job.completed",
		Title: "Job " + job + " completed", Message: fmt.Sprintf("Your job finished in %dm; results are ready.", 1+d.r.IntN(240)),
		JobID: job,
	}}
}

// Audit starts a valid audit event: the user as actor, a random action on
// a new job ID, outcome success (one in five: failure or denied), and
// random details.
func (b *EventBuilder) Audit() *Draft[*eventmodels.Audit] {
	d, done := b.next(eventmodels.TypeAudit, eventmodels.AuditSchemaVersion)
	defer done()
	outcome := eventmodels.OutcomeSuccess
	if d.r.IntN(5) == 0 {
		outcome = pick(d.r, []eventmodels.Outcome{eventmodels.OutcomeFailure, eventmodels.OutcomeDenied})
	}
	return &Draft[*eventmodels.Audit]{&eventmodels.Audit{
		Base: d.base, Actor: d.base.UserID, Action: pick(d.r, actions),
		Resource: eventmodels.Resource{Type: "job", ID: b.newJobIDLocked()}, Outcome: outcome,
		Details: randomLabels(d.r, []string{"ip", "client", "reason"}, []string{"10.1.2.3", "cli/2.1", "web/5.0", "quota"}, 2),
	}}
}

// SystemHealth starts a valid system.health event: a random component,
// status, latency and one to three checks.
func (b *EventBuilder) SystemHealth() *Draft[*eventmodels.SystemHealth] {
	d, done := b.next(eventmodels.TypeSystemHealth, eventmodels.SystemHealthSchemaVersion)
	defer done()
	return &Draft[*eventmodels.SystemHealth]{&eventmodels.SystemHealth{
		Base: d.base, Component: pick(d.r, components), Status: pick(d.r, healths),
		LatencyMS: round2(d.r.Float64() * 50), Checks: randomChecks(d.r),
	}}
}
