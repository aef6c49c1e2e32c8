package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/google/uuid"
)

// JobView is a job as the API shows it.
type JobView struct {
	JobID           string                `json:"job_id"`
	UserID          string                `json:"user_id"`
	CorrelationID   string                `json:"correlation_id"`
	Status          eventmodels.JobStatus `json:"status"`
	Progress        float64               `json:"progress"`
	Node            string                `json:"node,omitempty"`
	Spec            eventmodels.JobSpec   `json:"spec"`
	SubmittedAt     time.Time             `json:"submitted_at"`
	UpdatedAt       time.Time             `json:"updated_at"`
	Degraded        bool                  `json:"degraded"`
	LastError       string                `json:"last_error,omitempty"`
	Events          int                   `json:"events_published"`
	CancelRequested bool                  `json:"cancel_requested,omitempty"`
	// Reason says why a failed or cancelled job ended: the message of its
	// job.failed (for a job given up, which event could not be published
	// and why) or the reason of its job.cancelled.
	Reason string `json:"reason,omitempty"`
}

type job struct {
	id   string
	user string
	spec eventmodels.JobSpec
	done chan struct{} // closed when the job's runner returned (or was never started)

	mu          sync.Mutex
	corr        uuid.UUID
	status      eventmodels.JobStatus
	progress    float64
	node        string
	step        int // progress steps reported
	submittedAt time.Time
	updatedAt   time.Time
	degraded    error
	events      int
	cancelBy    string
	cancelWhy   string
	cancelCh    chan struct{} // closed on a cancel request
	reason      string        // why a failed or cancelled job ended
}

func newJob(id, user string, spec eventmodels.JobSpec, corr uuid.UUID) *job {
	if corr == uuid.Nil {
		corr = eventmodels.NewCorrelationID()
	}
	return &job{id: id, user: user, spec: spec, corr: corr, done: make(chan struct{}), cancelCh: make(chan struct{})}
}

// opts are the envelope options of the job's events: its correlation ID and
// the service clock.
func (j *job) opts(clock func() time.Time) []eventmodels.Option {
	j.mu.Lock()
	defer j.mu.Unlock()
	return []eventmodels.Option{eventmodels.WithCorrelationID(j.corr), eventmodels.WithClock(clock)}
}

// errDoesNotFollow refuses an event that is not a transition the job's
// status allows.
var errDoesNotFollow = errors.New("orchestrator: event does not follow the job's status")

// apply records a published (or replayed) transition, if j's status allows
// it (eventmodels.CanTransition, and from_status must match; a
// job.submitted only starts a job), else returns errDoesNotFollow.
func (j *job) apply(e eventmodels.Event) error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if err := transitions.Dispatch(context.WithValue(context.Background(), jobKey{}, j), e); err != nil {
		return err
	}
	j.events++
	j.updatedAt = e.Envelope().Timestamp
	j.corr = e.Envelope().CorrelationID
	return nil
}

// jobKey carries the job a transition applies to.
type jobKey struct{}

// transitions applies each lifecycle event to the job in its ctx, whose
// mu the caller holds.
var transitions = func() *events.Router {
	r := events.NewRouter()
	job := func(ctx context.Context) *job { return ctx.Value(jobKey{}).(*job) }
	allow := func(ok bool) error {
		if !ok {
			return errDoesNotFollow
		}
		return nil
	}
	events.On(r, func(ctx context.Context, e *eventmodels.JobSubmitted) error {
		j := job(ctx)
		if j.status != "" {
			return errDoesNotFollow // a job is submitted once
		}
		j.status, j.submittedAt = eventmodels.StatusSubmitted, e.Timestamp
		j.spec, j.user = e.Spec, e.UserID
		return nil
	})
	events.On(r, func(ctx context.Context, e *eventmodels.JobQueued) error {
		j := job(ctx)
		if err := allow(eventmodels.CanTransition(j.status, eventmodels.StatusQueued)); err != nil {
			return err
		}
		j.status = eventmodels.StatusQueued
		return nil
	})
	events.On(r, func(ctx context.Context, e *eventmodels.JobStatusChanged) error {
		j := job(ctx)
		if err := allow(e.FromStatus == j.status && eventmodels.CanTransition(j.status, e.ToStatus)); err != nil {
			return err
		}
		j.status, j.progress = e.ToStatus, e.Progress
		if e.Node != "" {
			j.node = e.Node
		}
		return nil
	})
	events.On(r, func(ctx context.Context, e *eventmodels.JobCompleted) error {
		j := job(ctx)
		if err := allow(eventmodels.CanTransition(j.status, eventmodels.StatusCompleted)); err != nil {
			return err
		}
		j.status, j.progress = eventmodels.StatusCompleted, 100
		return nil
	})
	events.On(r, func(ctx context.Context, e *eventmodels.JobFailed) error {
		j := job(ctx)
		if err := allow(e.FromStatus == j.status && eventmodels.CanTransition(j.status, eventmodels.StatusFailed)); err != nil {
			return err
		}
		j.status, j.reason = eventmodels.StatusFailed, e.ErrorMessage
		return nil
	})
	events.On(r, func(ctx context.Context, e *eventmodels.JobCancelled) error {
		j := job(ctx)
		if err := allow(e.FromStatus == j.status && eventmodels.CanTransition(j.status, eventmodels.StatusCancelled)); err != nil {
			return err
		}
		j.status, j.reason = eventmodels.StatusCancelled, e.Reason
		return nil
	})
	// job.metrics moves no status, but it is one of the job's published
	// events (counted, and it stamps UpdatedAt); it is published only
	// while the job runs.
	events.On(r, func(ctx context.Context, e *eventmodels.JobMetrics) error {
		return allow(job(ctx).status == eventmodels.StatusRunning)
	})
	return r
}()

// abandon ends the job as failed without an event: its job.failed could
// not be published. The job stays degraded (the last publish error).
func (j *job) abandon(reason string, now time.Time) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.status, j.reason, j.updatedAt = eventmodels.StatusFailed, reason, eventmodels.NormalizeTime(now)
}

// setStep records the progress step reached while running.
func (j *job) setStep(step int) {
	j.mu.Lock()
	j.step = step
	j.mu.Unlock()
}

// resumeStep derives the progress step from the progress of a replayed job.
func (j *job) resumeStep(steps int) {
	j.mu.Lock()
	j.step = int(math.Round(j.progress / 100 * float64(steps)))
	j.mu.Unlock()
}

func (j *job) state() (eventmodels.JobStatus, int) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.status, j.step
}

func (j *job) terminal() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.status.Terminal()
}

func (j *job) setDegraded(err error) {
	j.mu.Lock()
	j.degraded = err
	j.mu.Unlock()
}

// requestCancel returns false if the job already ended.
func (j *job) requestCancel(by, reason string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.status.Terminal() {
		return false
	}
	if j.cancelBy == "" {
		j.cancelBy, j.cancelWhy = by, reason
		close(j.cancelCh)
	}
	return true
}

func (j *job) cancelRequest() (by, reason string, ok bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.cancelBy, j.cancelWhy, j.cancelBy != ""
}

func (j *job) view() JobView {
	j.mu.Lock()
	defer j.mu.Unlock()
	v := JobView{
		JobID: j.id, UserID: j.user, CorrelationID: j.corr.String(), Status: j.status, Progress: j.progress,
		Node: j.node, Spec: j.spec, SubmittedAt: j.submittedAt, UpdatedAt: j.updatedAt,
		Degraded: j.degraded != nil, Events: j.events, CancelRequested: j.cancelBy != "", Reason: j.reason,
	}
	if j.degraded != nil {
		v.LastError = j.degraded.Error()
	}
	return v
}

// run drives j from its current status to a terminal one, publishing each
// transition before applying it. It returns early when ctx ends (shutdown);
// the job then stays where its last confirmed transition left it.
func (s *Service) run(ctx context.Context, j *job) {
	defer close(j.done)
	sim := s.cfg.Sim
	p := sim.planFor(j.id, j.spec)
	opts := j.opts(s.cfg.Clock)
	stepTime := p.runTime / time.Duration(sim.ProgressSteps)
	emit := func(evs ...eventmodels.Event) bool {
		for _, ev := range evs {
			if err := s.publish(ctx, j, ev); err != nil {
				s.giveUp(ctx, j, ev, err, opts)
				return false
			}
			s.record(j, ev)
		}
		return true
	}
	for {
		if ctx.Err() != nil {
			return
		}
		status, step := j.state()
		if status.Terminal() {
			return
		}
		if by, why, ok := j.cancelRequest(); ok {
			ev := eventmodels.NewJobCancelled(by, j.id, status, why, opts...)
			emit(ev)
			return
		}
		switch status {
		case eventmodels.StatusSubmitted:
			if !s.wait(ctx, j, sim.wall(p.queueWait/4)) {
				continue
			}
			ev := eventmodels.NewJobQueued(j.user, j.id, j.spec.Queue, int(p.queueWait/time.Second), opts...)
			ev.EstimatedWaitMS = p.queueWait.Milliseconds()
			if !emit(ev) {
				return
			}
		case eventmodels.StatusQueued:
			if !s.wait(ctx, j, sim.wall(p.queueWait)) {
				continue
			}
			ev := eventmodels.NewJobStatusChanged(j.user, j.id, eventmodels.StatusQueued, eventmodels.StatusRunning, 0, opts...)
			ev.Node, ev.Message = p.node, "started on "+p.node
			if !emit(ev) {
				return
			}
			j.setStep(0)
		case eventmodels.StatusRunning:
			if !s.wait(ctx, j, sim.wall(stepTime)) {
				continue
			}
			next := step + 1
			ran := stepTime * time.Duration(next)
			progress := math.Round(float64(next)/float64(sim.ProgressSteps)*1000) / 10
			metrics := eventmodels.NewJobMetrics(j.user, j.id, j.spec.ProjectID, usageAt(j.spec, p, ran, progress), opts...)
			metrics.Node = p.node
			switch {
			case p.failAt == next:
				metrics.Usage.Progress = math.Round(float64(next-1)/float64(sim.ProgressSteps)*1000) / 10
				failed := eventmodels.NewJobFailed(j.user, j.id, eventmodels.StatusRunning, p.failClass, failureMessage(p.failClass, j.spec), opts...)
				failed.ExitCode, failed.RuntimeMS, failed.Retryable = exitCode(p.failClass), ran.Milliseconds(), p.failClass != eventmodels.ErrorUser
				s.log.Info("simulated job failure (expected: the executor fails a share of jobs on purpose, --failure-ratio)",
					"job", j.id, "class", p.failClass, "message", failed.ErrorMessage)
				if !emit(metrics, failed) {
					return
				}
			case next >= sim.ProgressSteps:
				done := eventmodels.NewJobCompleted(j.user, j.id, usageAt(j.spec, p, ran, 100), opts...)
				done.OutputURI = fmt.Sprintf("s3://cosmic-horizons/results/%s/", j.id)
				if !emit(metrics, done) {
					return
				}
			default:
				ev := eventmodels.NewJobStatusChanged(j.user, j.id, eventmodels.StatusRunning, eventmodels.StatusRunning, progress, opts...)
				ev.Node, ev.Message = p.node, fmt.Sprintf("step %d of %d", next, sim.ProgressSteps)
				evs := []eventmodels.Event{ev}
				if next%sim.MetricsEvery == 0 {
					evs = append(evs, metrics)
				}
				if !emit(evs...) {
					return
				}
			}
			j.setStep(next)
		}
	}
}

// wait sleeps d of wall time; false if ctx ended or a cancel request came
// (the caller re-evaluates).
func (s *Service) wait(ctx context.Context, j *job, d time.Duration) bool {
	if ctx.Err() != nil {
		return false
	}
	if d <= 0 {
		select {
		case <-j.cancelCh:
			return false
		default:
			return true
		}
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-j.cancelCh:
		return false
	case <-t.C:
		return true
	}
}

// failureMessage is the error message of a simulated failure of class c;
// it says it is simulated, so that nobody reading a log or a notification
// takes it for a real one.
func failureMessage(c eventmodels.ErrorClass, spec eventmodels.JobSpec) string {
	return "simulated failure: " + simulatedCause(c, spec)
}

func simulatedCause(c eventmodels.ErrorClass, spec eventmodels.JobSpec) string {
	switch c {
	case eventmodels.ErrorOutOfMemory:
		return fmt.Sprintf("process killed: memory limit %d MB exceeded", spec.Resources.MemoryMB)
	case eventmodels.ErrorTimeout:
		return fmt.Sprintf("walltime of %ds exceeded", spec.Resources.WalltimeSeconds)
	case eventmodels.ErrorUser:
		return "pipeline exited: invalid calibration table"
	default:
		return "node lost contact with the scheduler"
	}
}

func exitCode(c eventmodels.ErrorClass) int {
	switch c {
	case eventmodels.ErrorOutOfMemory:
		return 137
	case eventmodels.ErrorTimeout:
		return 143
	case eventmodels.ErrorUser:
		return 2
	default:
		return 255
	}
}
