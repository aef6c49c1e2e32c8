package testkit

import (
	"slices"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/google/uuid"
)

// JobSubmittedBuilder builds a *eventmodels.JobSubmitted. Make one with
// Builder.JobSubmitted.
type JobSubmittedBuilder struct{ e eventmodels.JobSubmitted }

// JobSubmitted starts a valid job.submitted event with a new job ID and a
// random spec (project, telescope, queue, resources, parameters).
func (b *Builder) JobSubmitted() *JobSubmittedBuilder {
	d, done := b.next(eventmodels.TypeJobSubmitted, eventmodels.JobLifecycleSchemaVersion)
	defer done()
	return &JobSubmittedBuilder{eventmodels.JobSubmitted{Base: d.base, JobID: b.newJobIDLocked(), Spec: randomSpec(d.r)}}
}

func cloneJobSubmitted(e *eventmodels.JobSubmitted) *eventmodels.JobSubmitted {
	c := *e
	c.Spec.Parameters = slices.Clone(e.Spec.Parameters)
	return &c
}

// WithJobID sets job_id, the event's key.
func (x *JobSubmittedBuilder) WithJobID(id string) *JobSubmittedBuilder { x.e.JobID = id; return x }

// WithSpec replaces the whole spec (its parameters are copied).
func (x *JobSubmittedBuilder) WithSpec(s eventmodels.JobSpec) *JobSubmittedBuilder {
	s.Parameters = slices.Clone(s.Parameters)
	x.e.Spec = s
	return x
}

// WithProjectID sets spec.project_id.
func (x *JobSubmittedBuilder) WithProjectID(id string) *JobSubmittedBuilder {
	x.e.Spec.ProjectID = id
	return x
}

// WithTelescope sets spec.telescope.
func (x *JobSubmittedBuilder) WithTelescope(name string) *JobSubmittedBuilder {
	x.e.Spec.Telescope = name
	return x
}

// WithInstrument sets spec.instrument.
func (x *JobSubmittedBuilder) WithInstrument(name string) *JobSubmittedBuilder {
	x.e.Spec.Instrument = name
	return x
}

// WithJobName sets spec.job_name.
func (x *JobSubmittedBuilder) WithJobName(name string) *JobSubmittedBuilder {
	x.e.Spec.JobName = name
	return x
}

// WithQueue sets spec.queue.
func (x *JobSubmittedBuilder) WithQueue(queue string) *JobSubmittedBuilder {
	x.e.Spec.Queue = queue
	return x
}

// WithPriority sets spec.priority (valid: 0–10).
func (x *JobSubmittedBuilder) WithPriority(p int) *JobSubmittedBuilder {
	x.e.Spec.Priority = p
	return x
}

// WithResources sets spec.resources.
func (x *JobSubmittedBuilder) WithResources(r eventmodels.Resources) *JobSubmittedBuilder {
	x.e.Spec.Resources = r
	return x
}

// WithParameter sets one spec parameter, keeping the parameters sorted by
// key (as decoding from JSON does).
func (x *JobSubmittedBuilder) WithParameter(key, value string) *JobSubmittedBuilder {
	x.e.Spec.Parameters = setLabel(x.e.Spec.Parameters, key, value)
	return x
}

// setLabel returns l with key set to value, sorted by key.
func setLabel(l eventmodels.Labels, key, value string) eventmodels.Labels {
	out := slices.Clone(l)
	for i := range out {
		if out[i].Key == key {
			out[i].Value = value
			return out
		}
	}
	out = append(out, eventmodels.Label{Key: key, Value: value})
	slices.SortStableFunc(out, func(a, b eventmodels.Label) int {
		switch {
		case a.Key < b.Key:
			return -1
		case a.Key > b.Key:
			return 1
		}
		return 0
	})
	return out
}

// WithUser sets the envelope's user_id, who initiated the event.
func (x *JobSubmittedBuilder) WithUser(userID string) *JobSubmittedBuilder {
	x.e.UserID = userID
	return x
}

// WithCorrelationID sets the envelope's correlation_id, e.g. to tie the
// event to others of one job.
func (x *JobSubmittedBuilder) WithCorrelationID(id uuid.UUID) *JobSubmittedBuilder {
	x.e.CorrelationID = id
	return x
}

// WithEventID sets the envelope's event_id, e.g. to build a duplicate.
func (x *JobSubmittedBuilder) WithEventID(id uuid.UUID) *JobSubmittedBuilder {
	x.e.EventID = id
	return x
}

// At sets the envelope's timestamp, cut to UTC milliseconds.
func (x *JobSubmittedBuilder) At(t time.Time) *JobSubmittedBuilder {
	x.e.Timestamp = eventmodels.NormalizeTime(t)
	return x
}

// With calls fn on the event being built: the escape hatch for any field,
// including invalid values for validation tests. A nil fn does nothing.
func (x *JobSubmittedBuilder) With(fn func(*eventmodels.JobSubmitted)) *JobSubmittedBuilder {
	if fn != nil {
		fn(&x.e)
	}
	return x
}

// Build returns a copy of the event as set so far, valid unless a setter
// made it invalid. Build does not validate and never panics; each call
// returns a new copy (with the same event ID).
func (x *JobSubmittedBuilder) Build() *eventmodels.JobSubmitted { return cloneJobSubmitted(&x.e) }

// BuildValid returns Build() and the result of its Validate.
func (x *JobSubmittedBuilder) BuildValid() (*eventmodels.JobSubmitted, error) {
	return buildValid(x.Build())
}

// MustBuild returns Build(), failing t with the validation error if the
// event is invalid.
func (x *JobSubmittedBuilder) MustBuild(t testing.TB) *eventmodels.JobSubmitted {
	t.Helper()
	return mustBuild(t, x.Build())
}

// JobQueuedBuilder builds a *eventmodels.JobQueued. Make one with
// Builder.JobQueued.
type JobQueuedBuilder struct{ e eventmodels.JobQueued }

// JobQueued starts a valid job.queued event with a new job ID, a random
// queue, position and estimated wait.
func (b *Builder) JobQueued() *JobQueuedBuilder {
	d, done := b.next(eventmodels.TypeJobQueued, eventmodels.JobLifecycleSchemaVersion)
	defer done()
	return &JobQueuedBuilder{eventmodels.JobQueued{
		Base: d.base, JobID: b.newJobIDLocked(), Queue: pick(d.r, queues),
		Position: d.r.IntN(50), EstimatedWaitMS: int64(d.r.IntN(3_600_000)),
	}}
}

func cloneJobQueued(e *eventmodels.JobQueued) *eventmodels.JobQueued { c := *e; return &c }

// WithJobID sets job_id, the event's key.
func (x *JobQueuedBuilder) WithJobID(id string) *JobQueuedBuilder { x.e.JobID = id; return x }

// WithQueue sets queue.
func (x *JobQueuedBuilder) WithQueue(queue string) *JobQueuedBuilder { x.e.Queue = queue; return x }

// WithPosition sets position (valid: ≥ 0).
func (x *JobQueuedBuilder) WithPosition(p int) *JobQueuedBuilder { x.e.Position = p; return x }

// WithEstimatedWaitMS sets estimated_wait_ms (valid: ≥ 0).
func (x *JobQueuedBuilder) WithEstimatedWaitMS(ms int64) *JobQueuedBuilder {
	x.e.EstimatedWaitMS = ms
	return x
}

// WithUser sets the envelope's user_id, who initiated the event.
func (x *JobQueuedBuilder) WithUser(userID string) *JobQueuedBuilder { x.e.UserID = userID; return x }

// WithCorrelationID sets the envelope's correlation_id, e.g. to tie the
// event to others of one job.
func (x *JobQueuedBuilder) WithCorrelationID(id uuid.UUID) *JobQueuedBuilder {
	x.e.CorrelationID = id
	return x
}

// WithEventID sets the envelope's event_id, e.g. to build a duplicate.
func (x *JobQueuedBuilder) WithEventID(id uuid.UUID) *JobQueuedBuilder { x.e.EventID = id; return x }

// At sets the envelope's timestamp, cut to UTC milliseconds.
func (x *JobQueuedBuilder) At(t time.Time) *JobQueuedBuilder {
	x.e.Timestamp = eventmodels.NormalizeTime(t)
	return x
}

// With calls fn on the event being built: the escape hatch for any field,
// including invalid values for validation tests. A nil fn does nothing.
func (x *JobQueuedBuilder) With(fn func(*eventmodels.JobQueued)) *JobQueuedBuilder {
	if fn != nil {
		fn(&x.e)
	}
	return x
}

// Build returns a copy of the event as set so far, valid unless a setter
// made it invalid. Build does not validate and never panics; each call
// returns a new copy (with the same event ID).
func (x *JobQueuedBuilder) Build() *eventmodels.JobQueued { return cloneJobQueued(&x.e) }

// BuildValid returns Build() and the result of its Validate.
func (x *JobQueuedBuilder) BuildValid() (*eventmodels.JobQueued, error) { return buildValid(x.Build()) }

// MustBuild returns Build(), failing t with the validation error if the
// event is invalid.
func (x *JobQueuedBuilder) MustBuild(t testing.TB) *eventmodels.JobQueued {
	t.Helper()
	return mustBuild(t, x.Build())
}

// JobStatusChangedBuilder builds a *eventmodels.JobStatusChanged. Make one
// with Builder.JobStatusChanged.
type JobStatusChangedBuilder struct{ e eventmodels.JobStatusChanged }

// JobStatusChanged starts a valid job.status_changed event: by default a
// progress report (running → running) of a new job ID with random progress
// and node.
func (b *Builder) JobStatusChanged() *JobStatusChangedBuilder {
	d, done := b.next(eventmodels.TypeJobStatusChanged, eventmodels.JobLifecycleSchemaVersion)
	defer done()
	return &JobStatusChangedBuilder{eventmodels.JobStatusChanged{
		Base: d.base, JobID: b.newJobIDLocked(),
		FromStatus: eventmodels.StatusRunning, ToStatus: eventmodels.StatusRunning,
		Progress: round2(d.r.Float64() * eventmodels.MaxProgress), Node: pick(d.r, nodes),
	}}
}

func cloneJobStatusChanged(e *eventmodels.JobStatusChanged) *eventmodels.JobStatusChanged {
	c := *e
	return &c
}

// WithJobID sets job_id, the event's key.
func (x *JobStatusChangedBuilder) WithJobID(id string) *JobStatusChangedBuilder {
	x.e.JobID = id
	return x
}

// WithTransition sets from_status and to_status; Validate rejects a move
// eventmodels.CanTransition forbids.
func (x *JobStatusChangedBuilder) WithTransition(from, to eventmodels.JobStatus) *JobStatusChangedBuilder {
	x.e.FromStatus, x.e.ToStatus = from, to
	return x
}

// WithProgress sets progress, the percentage done (valid: 0–100).
func (x *JobStatusChangedBuilder) WithProgress(p float64) *JobStatusChangedBuilder {
	x.e.Progress = p
	return x
}

// WithMessage sets message.
func (x *JobStatusChangedBuilder) WithMessage(msg string) *JobStatusChangedBuilder {
	x.e.Message = msg
	return x
}

// WithNode sets node, the compute node running the job.
func (x *JobStatusChangedBuilder) WithNode(node string) *JobStatusChangedBuilder {
	x.e.Node = node
	return x
}

// WithUser sets the envelope's user_id, who initiated the event.
func (x *JobStatusChangedBuilder) WithUser(userID string) *JobStatusChangedBuilder {
	x.e.UserID = userID
	return x
}

// WithCorrelationID sets the envelope's correlation_id, e.g. to tie the
// event to others of one job.
func (x *JobStatusChangedBuilder) WithCorrelationID(id uuid.UUID) *JobStatusChangedBuilder {
	x.e.CorrelationID = id
	return x
}

// WithEventID sets the envelope's event_id, e.g. to build a duplicate.
func (x *JobStatusChangedBuilder) WithEventID(id uuid.UUID) *JobStatusChangedBuilder {
	x.e.EventID = id
	return x
}

// At sets the envelope's timestamp, cut to UTC milliseconds.
func (x *JobStatusChangedBuilder) At(t time.Time) *JobStatusChangedBuilder {
	x.e.Timestamp = eventmodels.NormalizeTime(t)
	return x
}

// With calls fn on the event being built: the escape hatch for any field,
// including invalid values for validation tests. A nil fn does nothing.
func (x *JobStatusChangedBuilder) With(fn func(*eventmodels.JobStatusChanged)) *JobStatusChangedBuilder {
	if fn != nil {
		fn(&x.e)
	}
	return x
}

// Build returns a copy of the event as set so far, valid unless a setter
// made it invalid. Build does not validate and never panics; each call
// returns a new copy (with the same event ID).
func (x *JobStatusChangedBuilder) Build() *eventmodels.JobStatusChanged {
	return cloneJobStatusChanged(&x.e)
}

// BuildValid returns Build() and the result of its Validate.
func (x *JobStatusChangedBuilder) BuildValid() (*eventmodels.JobStatusChanged, error) {
	return buildValid(x.Build())
}

// MustBuild returns Build(), failing t with the validation error if the
// event is invalid.
func (x *JobStatusChangedBuilder) MustBuild(t testing.TB) *eventmodels.JobStatusChanged {
	t.Helper()
	return mustBuild(t, x.Build())
}
