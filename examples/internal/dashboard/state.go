package dashboard

import (
	"context"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/eventmodels"
)

// JobState is one job as the dashboard shows it.
type JobState struct {
	JobID     string                `json:"job_id"`
	UserID    string                `json:"user_id"`
	JobName   string                `json:"job_name,omitempty"`
	ProjectID string                `json:"project_id,omitempty"`
	Queue     string                `json:"queue,omitempty"`
	Status    eventmodels.JobStatus `json:"status"`
	// Progress is the percentage done, 0–100.
	Progress float64 `json:"progress"`
	Node     string  `json:"node,omitempty"`
	// Detail is the failure message or the cancellation reason.
	Detail      string    `json:"detail,omitempty"`
	SubmittedAt time.Time `json:"submitted_at,omitzero"`
	// StartedAt is when it started running; zero before.
	StartedAt time.Time `json:"started_at,omitzero"`
	// FinishedAt is when it reached a terminal status; zero before.
	FinishedAt time.Time `json:"finished_at,omitzero"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Duration is the job's run time: from StartedAt (or SubmittedAt when it
// never ran) to FinishedAt, or to now while it is unfinished.
func (j *JobState) Duration(now time.Time) time.Duration {
	from := j.StartedAt
	if from.IsZero() {
		from = j.SubmittedAt
	}
	to := j.FinishedAt
	if to.IsZero() {
		to = now
	}
	if from.IsZero() || to.Before(from) {
		return 0
	}
	return to.Sub(from)
}

func rank(s eventmodels.JobStatus) int {
	switch s {
	case "":
		return -1
	case eventmodels.StatusSubmitted:
		return 0
	case eventmodels.StatusQueued:
		return 1
	case eventmodels.StatusRunning:
		return 2
	}
	return 3
}

// apply folds a job event into j and reports whether j changed. The status
// only moves forward; the first terminal status is final; progress only
// grows; fields a late event carries (the submission's spec, a start time)
// are filled in even when its status is behind. An event of another type
// changes nothing.
func (j *JobState) apply(e eventmodels.Event) bool {
	before := *j
	env := e.Envelope()
	if j.UserID == "" {
		j.UserID = env.UserID
	}
	if folds.Dispatch(context.WithValue(context.Background(), stateKey{}, j), e) != nil {
		*j = before
		return false
	}
	if *j == before {
		return false
	}
	if env.Timestamp.After(j.UpdatedAt) {
		j.UpdatedAt = env.Timestamp
	}
	return true
}

// stateKey carries the JobState an event folds into.
type stateKey struct{}

// folds folds each job event into the JobState in its ctx.
var folds = func() *events.Router {
	r := events.NewRouter()
	state := func(ctx context.Context) *JobState { return ctx.Value(stateKey{}).(*JobState) }
	events.On(r, func(ctx context.Context, e *eventmodels.JobSubmitted) error {
		j := state(ctx)
		j.SubmittedAt = e.Timestamp
		j.JobName, j.ProjectID, j.Queue = e.Spec.JobName, e.Spec.ProjectID, e.Spec.Queue
		j.advance(eventmodels.StatusSubmitted)
		return nil
	})
	events.On(r, func(ctx context.Context, e *eventmodels.JobQueued) error {
		j := state(ctx)
		if j.Queue == "" {
			j.Queue = e.Queue
		}
		j.advance(eventmodels.StatusQueued)
		return nil
	})
	events.On(r, func(ctx context.Context, e *eventmodels.JobStatusChanged) error {
		j, at := state(ctx), e.Timestamp
		if e.ToStatus == eventmodels.StatusRunning && (j.StartedAt.IsZero() || at.Before(j.StartedAt)) {
			j.StartedAt = at
		}
		if e.Node != "" && !j.Status.Terminal() {
			j.Node = e.Node
		}
		if j.advance(e.ToStatus) && e.ToStatus == eventmodels.StatusRunning && e.Progress > j.Progress {
			j.Progress = e.Progress
		}
		return nil
	})
	events.On(r, func(ctx context.Context, e *eventmodels.JobCompleted) error {
		if j := state(ctx); j.finish(eventmodels.StatusCompleted, e.Timestamp) {
			j.Progress = 100
		}
		return nil
	})
	events.On(r, func(ctx context.Context, e *eventmodels.JobFailed) error {
		if j := state(ctx); j.finish(eventmodels.StatusFailed, e.Timestamp) {
			j.Detail = string(e.ErrorClass) + ": " + e.ErrorMessage
		}
		return nil
	})
	events.On(r, func(ctx context.Context, e *eventmodels.JobCancelled) error {
		if j := state(ctx); j.finish(eventmodels.StatusCancelled, e.Timestamp) {
			j.Detail = "cancelled by " + e.CancelledBy
			if e.Reason != "" {
				j.Detail += ": " + e.Reason
			}
		}
		return nil
	})
	return r
}()

// advance moves the status to s unless that would move it back or out of a
// terminal status; it reports whether the job is now in s.
func (j *JobState) advance(s eventmodels.JobStatus) bool {
	if j.Status.Terminal() {
		return false
	}
	if rank(s) >= rank(j.Status) {
		j.Status = s
	}
	return j.Status == s
}

// finish moves the job to terminal status s at t, unless it already ended;
// it reports whether it did.
func (j *JobState) finish(s eventmodels.JobStatus, t time.Time) bool {
	if j.Status.Terminal() {
		return false
	}
	j.Status, j.FinishedAt = s, t
	return true
}
