package eventmodels

// JobStatus is the state of a job in its lifecycle. The legal moves are
// given by CanTransition:
//
//	submitted → queued | failed | cancelled
//	queued    → running | failed | cancelled
//	running   → running (progress) | completed | failed | cancelled
//	completed, failed, cancelled: terminal
type JobStatus string

// The job statuses. Their string values are the wire values (JSON and Avro
// enum symbols).
const (
	StatusSubmitted JobStatus = "submitted"
	StatusQueued    JobStatus = "queued"
	StatusRunning   JobStatus = "running"
	StatusCompleted JobStatus = "completed"
	StatusFailed    JobStatus = "failed"
	StatusCancelled JobStatus = "cancelled"
)

// JobStatuses lists every status in lifecycle order.
var jobStatuses = [...]JobStatus{StatusSubmitted, StatusQueued, StatusRunning, StatusCompleted, StatusFailed, StatusCancelled}

// JobStatuses returns every status in lifecycle order.
func JobStatuses() []JobStatus { s := jobStatuses; return s[:] }

var transitions = map[JobStatus][]JobStatus{
	StatusSubmitted: {StatusQueued, StatusFailed, StatusCancelled},
	StatusQueued:    {StatusRunning, StatusFailed, StatusCancelled},
	StatusRunning:   {StatusRunning, StatusCompleted, StatusFailed, StatusCancelled},
}

// Valid reports whether s is one of the defined statuses.
func (s JobStatus) Valid() bool {
	for _, x := range jobStatuses {
		if s == x {
			return true
		}
	}
	return false
}

// Terminal reports whether no transition leaves s.
func (s JobStatus) Terminal() bool {
	return s == StatusCompleted || s == StatusFailed || s == StatusCancelled
}

// CanTransition reports whether a job may move from one status to another.
// running → running is legal: it reports progress.
func CanTransition(from, to JobStatus) bool {
	for _, t := range transitions[from] {
		if t == to {
			return true
		}
	}
	return false
}
