package dashboard

import (
	"time"

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
// are filled in even when its status is behind.
func (j *JobState) apply(e eventmodels.Event) bool {
	before := *j
	env := e.Envelope()
	at := env.Timestamp
	if j.UserID == "" {
		j.UserID = env.UserID
	}
	switch v := e.(type) {
	case *eventmodels.JobSubmitted:
		j.SubmittedAt = at
		j.JobName, j.ProjectID, j.Queue = v.Spec.JobName, v.Spec.ProjectID, v.Spec.Queue
		j.advance(eventmodels.StatusSubmitted)
	case *eventmodels.JobQueued:
		if j.Queue == "" {
			j.Queue = v.Queue
		}
		j.advance(eventmodels.StatusQueued)
	case *eventmodels.JobStatusChanged:
		if v.ToStatus == eventmodels.StatusRunning && (j.StartedAt.IsZero() || at.Before(j.StartedAt)) {
			j.StartedAt = at
		}
		if v.Node != "" && !j.Status.Terminal() {
			j.Node = v.Node
		}
		if j.advance(v.ToStatus) && v.ToStatus == eventmodels.StatusRunning && v.Progress > j.Progress {
			j.Progress = v.Progress
		}
	case *eventmodels.JobCompleted:
		if j.finish(eventmodels.StatusCompleted, at) {
			j.Progress = 100
		}
	case *eventmodels.JobFailed:
		if j.finish(eventmodels.StatusFailed, at) {
			j.Detail = string(v.ErrorClass) + ": " + v.ErrorMessage
		}
	case *eventmodels.JobCancelled:
		if j.finish(eventmodels.StatusCancelled, at) {
			j.Detail = "cancelled by " + v.CancelledBy
			if v.Reason != "" {
				j.Detail += ": " + v.Reason
			}
		}
	default:
		return false
	}
	if *j == before {
		return false
	}
	if at.After(j.UpdatedAt) {
		j.UpdatedAt = at
	}
	return true
}

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
