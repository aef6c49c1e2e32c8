package testkit

import (
	"fmt"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/google/uuid"
)

// JobCompletedBuilder builds a *eventmodels.JobCompleted. Make one with
// Builder.JobCompleted.
type JobCompletedBuilder struct{ e eventmodels.JobCompleted }

// JobCompleted starts a valid job.completed event of a new job ID: exit
// code 0, an output URI, random usage at 100% progress.
func (b *Builder) JobCompleted() *JobCompletedBuilder {
	d, done := b.next(eventmodels.TypeJobCompleted, eventmodels.JobLifecycleSchemaVersion)
	defer done()
	return &JobCompletedBuilder{eventmodels.JobCompleted{
		Base: d.base, JobID: b.newJobIDLocked(),
		OutputURI: fmt.Sprintf("s3://cosmic/results/run-%08x/", d.r.Uint32()),
		Usage:     randomUsage(d.r, eventmodels.MaxProgress),
	}}
}

func cloneJobCompleted(e *eventmodels.JobCompleted) *eventmodels.JobCompleted { c := *e; return &c }

// WithJobID sets job_id, the event's key.
func (x *JobCompletedBuilder) WithJobID(id string) *JobCompletedBuilder { x.e.JobID = id; return x }

// WithExitCode sets exit_code (valid: only 0 for a completed job).
func (x *JobCompletedBuilder) WithExitCode(code int) *JobCompletedBuilder {
	x.e.ExitCode = code
	return x
}

// WithOutputURI sets output_uri.
func (x *JobCompletedBuilder) WithOutputURI(uri string) *JobCompletedBuilder {
	x.e.OutputURI = uri
	return x
}

// WithUsage sets usage, the job's final resource use.
func (x *JobCompletedBuilder) WithUsage(u eventmodels.Usage) *JobCompletedBuilder {
	x.e.Usage = u
	return x
}

// WithUser sets the envelope's user_id, who initiated the event.
func (x *JobCompletedBuilder) WithUser(userID string) *JobCompletedBuilder {
	x.e.UserID = userID
	return x
}

// WithCorrelationID sets the envelope's correlation_id, e.g. to tie the
// event to others of one job.
func (x *JobCompletedBuilder) WithCorrelationID(id uuid.UUID) *JobCompletedBuilder {
	x.e.CorrelationID = id
	return x
}

// WithEventID sets the envelope's event_id, e.g. to build a duplicate.
func (x *JobCompletedBuilder) WithEventID(id uuid.UUID) *JobCompletedBuilder {
	x.e.EventID = id
	return x
}

// At sets the envelope's timestamp, cut to UTC milliseconds.
func (x *JobCompletedBuilder) At(t time.Time) *JobCompletedBuilder {
	x.e.Timestamp = eventmodels.NormalizeTime(t)
	return x
}

// With calls fn on the event being built: the escape hatch for any field,
// including invalid values for validation tests. A nil fn does nothing.
func (x *JobCompletedBuilder) With(fn func(*eventmodels.JobCompleted)) *JobCompletedBuilder {
	if fn != nil {
		fn(&x.e)
	}
	return x
}

// Build returns a copy of the event as set so far, valid unless a setter
// made it invalid. Build does not validate and never panics; each call
// returns a new copy (with the same event ID).
func (x *JobCompletedBuilder) Build() *eventmodels.JobCompleted { return cloneJobCompleted(&x.e) }

// BuildValid returns Build() and the result of its Validate.
func (x *JobCompletedBuilder) BuildValid() (*eventmodels.JobCompleted, error) {
	return buildValid(x.Build())
}

// MustBuild returns Build(), failing t with the validation error if the
// event is invalid.
func (x *JobCompletedBuilder) MustBuild(t testing.TB) *eventmodels.JobCompleted {
	t.Helper()
	return mustBuild(t, x.Build())
}

// JobFailedBuilder builds a *eventmodels.JobFailed. Make one with
// Builder.JobFailed.
type JobFailedBuilder struct{ e eventmodels.JobFailed }

// JobFailed starts a valid job.failed event of a new job ID that was
// running, with a random but consistent error class, exit code, message and
// retryability.
func (b *Builder) JobFailed() *JobFailedBuilder {
	d, done := b.next(eventmodels.TypeJobFailed, eventmodels.JobLifecycleSchemaVersion)
	defer done()
	f := pick(d.r, failures)
	return &JobFailedBuilder{eventmodels.JobFailed{
		Base: d.base, JobID: b.newJobIDLocked(), FromStatus: eventmodels.StatusRunning,
		ExitCode: f.code, ErrorClass: f.class, ErrorMessage: f.message, Retryable: f.retry,
		RuntimeMS: int64(d.r.IntN(7_200_000)),
	}}
}

func cloneJobFailed(e *eventmodels.JobFailed) *eventmodels.JobFailed { c := *e; return &c }

// WithJobID sets job_id, the event's key.
func (x *JobFailedBuilder) WithJobID(id string) *JobFailedBuilder { x.e.JobID = id; return x }

// WithFromStatus sets from_status, the status the job failed in (valid:
// submitted, queued or running).
func (x *JobFailedBuilder) WithFromStatus(s eventmodels.JobStatus) *JobFailedBuilder {
	x.e.FromStatus = s
	return x
}

// WithExitCode sets exit_code.
func (x *JobFailedBuilder) WithExitCode(code int) *JobFailedBuilder { x.e.ExitCode = code; return x }

// WithErrorClass sets error_class.
func (x *JobFailedBuilder) WithErrorClass(c eventmodels.ErrorClass) *JobFailedBuilder {
	x.e.ErrorClass = c
	return x
}

// WithErrorMessage sets error_message (valid: not empty).
func (x *JobFailedBuilder) WithErrorMessage(msg string) *JobFailedBuilder {
	x.e.ErrorMessage = msg
	return x
}

// WithRetryable sets retryable.
func (x *JobFailedBuilder) WithRetryable(r bool) *JobFailedBuilder { x.e.Retryable = r; return x }

// WithRuntimeMS sets runtime_ms (valid: ≥ 0).
func (x *JobFailedBuilder) WithRuntimeMS(ms int64) *JobFailedBuilder { x.e.RuntimeMS = ms; return x }

// WithUser sets the envelope's user_id, who initiated the event.
func (x *JobFailedBuilder) WithUser(userID string) *JobFailedBuilder { x.e.UserID = userID; return x }

// WithCorrelationID sets the envelope's correlation_id, e.g. to tie the
// event to others of one job.
func (x *JobFailedBuilder) WithCorrelationID(id uuid.UUID) *JobFailedBuilder {
	x.e.CorrelationID = id
	return x
}

// WithEventID sets the envelope's event_id, e.g. to build a duplicate.
func (x *JobFailedBuilder) WithEventID(id uuid.UUID) *JobFailedBuilder { x.e.EventID = id; return x }

// At sets the envelope's timestamp, cut to UTC milliseconds.
func (x *JobFailedBuilder) At(t time.Time) *JobFailedBuilder {
	x.e.Timestamp = eventmodels.NormalizeTime(t)
	return x
}

// With calls fn on the event being built: the escape hatch for any field,
// including invalid values for validation tests. A nil fn does nothing.
func (x *JobFailedBuilder) With(fn func(*eventmodels.JobFailed)) *JobFailedBuilder {
	if fn != nil {
		fn(&x.e)
	}
	return x
}

// Build returns a copy of the event as set so far, valid unless a setter
// made it invalid. Build does not validate and never panics; each call
// returns a new copy (with the same event ID).
func (x *JobFailedBuilder) Build() *eventmodels.JobFailed { return cloneJobFailed(&x.e) }

// BuildValid returns Build() and the result of its Validate.
func (x *JobFailedBuilder) BuildValid() (*eventmodels.JobFailed, error) { return buildValid(x.Build()) }

// MustBuild returns Build(), failing t with the validation error if the
// event is invalid.
func (x *JobFailedBuilder) MustBuild(t testing.TB) *eventmodels.JobFailed {
	t.Helper()
	return mustBuild(t, x.Build())
}

// JobCancelledBuilder builds a *eventmodels.JobCancelled. Make one with
// Builder.JobCancelled.
type JobCancelledBuilder struct{ e eventmodels.JobCancelled }

// JobCancelled starts a valid job.cancelled event of a new job ID, from a
// random non-terminal status, with a reason; cancelled_by is the user.
func (b *Builder) JobCancelled() *JobCancelledBuilder {
	d, done := b.next(eventmodels.TypeJobCancelled, eventmodels.JobLifecycleSchemaVersion)
	defer done()
	from := pick(d.r, []eventmodels.JobStatus{eventmodels.StatusSubmitted, eventmodels.StatusQueued, eventmodels.StatusRunning})
	return &JobCancelledBuilder{eventmodels.JobCancelled{
		Base: d.base, JobID: b.newJobIDLocked(), FromStatus: from,
		Reason: pick(d.r, cancelWhy), CancelledBy: d.base.UserID,
	}}
}

func cloneJobCancelled(e *eventmodels.JobCancelled) *eventmodels.JobCancelled { c := *e; return &c }

// WithJobID sets job_id, the event's key.
func (x *JobCancelledBuilder) WithJobID(id string) *JobCancelledBuilder { x.e.JobID = id; return x }

// WithFromStatus sets from_status, the status the job was cancelled in
// (valid: submitted, queued or running).
func (x *JobCancelledBuilder) WithFromStatus(s eventmodels.JobStatus) *JobCancelledBuilder {
	x.e.FromStatus = s
	return x
}

// WithReason sets reason.
func (x *JobCancelledBuilder) WithReason(reason string) *JobCancelledBuilder {
	x.e.Reason = reason
	return x
}

// WithCancelledBy sets cancelled_by (by default the user).
func (x *JobCancelledBuilder) WithCancelledBy(userID string) *JobCancelledBuilder {
	x.e.CancelledBy = userID
	return x
}

// WithUser sets the envelope's user_id, who initiated the event. CancelledBy
// follows it unless it was set to another value.
func (x *JobCancelledBuilder) WithUser(userID string) *JobCancelledBuilder {
	if x.e.CancelledBy == x.e.UserID {
		x.e.CancelledBy = userID
	}
	x.e.UserID = userID
	return x
}

// WithCorrelationID sets the envelope's correlation_id, e.g. to tie the
// event to others of one job.
func (x *JobCancelledBuilder) WithCorrelationID(id uuid.UUID) *JobCancelledBuilder {
	x.e.CorrelationID = id
	return x
}

// WithEventID sets the envelope's event_id, e.g. to build a duplicate.
func (x *JobCancelledBuilder) WithEventID(id uuid.UUID) *JobCancelledBuilder {
	x.e.EventID = id
	return x
}

// At sets the envelope's timestamp, cut to UTC milliseconds.
func (x *JobCancelledBuilder) At(t time.Time) *JobCancelledBuilder {
	x.e.Timestamp = eventmodels.NormalizeTime(t)
	return x
}

// With calls fn on the event being built: the escape hatch for any field,
// including invalid values for validation tests. A nil fn does nothing.
func (x *JobCancelledBuilder) With(fn func(*eventmodels.JobCancelled)) *JobCancelledBuilder {
	if fn != nil {
		fn(&x.e)
	}
	return x
}

// Build returns a copy of the event as set so far, valid unless a setter
// made it invalid. Build does not validate and never panics; each call
// returns a new copy (with the same event ID).
func (x *JobCancelledBuilder) Build() *eventmodels.JobCancelled { return cloneJobCancelled(&x.e) }

// BuildValid returns Build() and the result of its Validate.
func (x *JobCancelledBuilder) BuildValid() (*eventmodels.JobCancelled, error) {
	return buildValid(x.Build())
}

// MustBuild returns Build(), failing t with the validation error if the
// event is invalid.
func (x *JobCancelledBuilder) MustBuild(t testing.TB) *eventmodels.JobCancelled {
	t.Helper()
	return mustBuild(t, x.Build())
}
