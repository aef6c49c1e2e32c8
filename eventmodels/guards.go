package eventmodels

// As returns e as the concrete type T (a pointer type such as
// *JobCompleted) and whether it is one.
func As[T Event](e Event) (T, bool) {
	t, ok := e.(T)
	return t, ok
}

// IsJobSubmitted reports whether e is a *JobSubmitted.
func IsJobSubmitted(e Event) bool { _, ok := e.(*JobSubmitted); return ok }

// IsJobQueued reports whether e is a *JobQueued.
func IsJobQueued(e Event) bool { _, ok := e.(*JobQueued); return ok }

// IsJobStatusChanged reports whether e is a *JobStatusChanged.
func IsJobStatusChanged(e Event) bool { _, ok := e.(*JobStatusChanged); return ok }

// IsJobCompleted reports whether e is a *JobCompleted.
func IsJobCompleted(e Event) bool { _, ok := e.(*JobCompleted); return ok }

// IsJobFailed reports whether e is a *JobFailed.
func IsJobFailed(e Event) bool { _, ok := e.(*JobFailed); return ok }

// IsJobCancelled reports whether e is a *JobCancelled.
func IsJobCancelled(e Event) bool { _, ok := e.(*JobCancelled); return ok }

// IsJobMetrics reports whether e is a *JobMetrics.
func IsJobMetrics(e Event) bool { _, ok := e.(*JobMetrics); return ok }

// IsNotification reports whether e is a *Notification.
func IsNotification(e Event) bool { _, ok := e.(*Notification); return ok }

// IsAudit reports whether e is an *Audit.
func IsAudit(e Event) bool { _, ok := e.(*Audit); return ok }

// IsSystemHealth reports whether e is a *SystemHealth.
func IsSystemHealth(e Event) bool { _, ok := e.(*SystemHealth); return ok }

// IsJobEvent reports whether e belongs to the job lifecycle (submitted,
// queued, status_changed, completed, failed, cancelled).
func IsJobEvent(e Event) bool {
	switch e.(type) {
	case *JobSubmitted, *JobQueued, *JobStatusChanged, *JobCompleted, *JobFailed, *JobCancelled:
		return true
	}
	return false
}

// IsTerminal reports whether e ends a job (completed, failed or cancelled).
func IsTerminal(e Event) bool {
	switch e.(type) {
	case *JobCompleted, *JobFailed, *JobCancelled:
		return true
	}
	return false
}

// StatusAfter returns the status a job lifecycle event moves its job to:
// submitted, queued, the to_status of a job.status_changed, completed,
// failed or cancelled; false for events outside the job lifecycle.
func StatusAfter(e Event) (JobStatus, bool) {
	switch v := e.(type) {
	case *JobSubmitted:
		return StatusSubmitted, true
	case *JobQueued:
		return StatusQueued, true
	case *JobStatusChanged:
		return v.ToStatus, true
	case *JobCompleted:
		return StatusCompleted, true
	case *JobFailed:
		return StatusFailed, true
	case *JobCancelled:
		return StatusCancelled, true
	}
	return "", false
}
