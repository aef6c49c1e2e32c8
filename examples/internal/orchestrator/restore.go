package orchestrator

import (
	"context"
	"fmt"
	"sync"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/google/uuid"
)

// RestoreReport says what Restore found.
type RestoreReport struct {
	Events   int // lifecycle events replayed and applied
	Jobs     int // jobs seen
	Resumed  int // unfinished jobs started again
	Finished int // jobs already terminal
	Skipped  int // messages that did not decode, or of a job whose job.submitted is gone (logged)
	Ignored  int // redelivered events (same event ID) and transitions that do not follow the job's status (logged)
}

// Restore rebuilds the jobs recorded in job-lifecycle and resumes every
// unfinished one from its last published transition. Call it once, before
// serving, on a service with no jobs of its own yet. Job numbering continues
// after the highest number found.
//
// The log is read at least once: an event seen again (same event ID), a
// second job.submitted of a job, or a transition the job's status does not
// allow (eventmodels.CanTransition, and from_status must match) is ignored,
// so a redelivered message never moves a job back.
func (s *Service) Restore(ctx context.Context) (RestoreReport, error) {
	var rep RestoreReport
	if s.cfg.Replayer == nil {
		return rep, nil
	}
	var mu sync.Mutex // the Replayer may hand partitions over concurrently
	found := map[string]*job{}
	seen := map[uuid.UUID]struct{}{}
	order := []string{}
	// seenOnce drops an event replayed twice (same event ID).
	seenOnce := func(e eventmodels.Event) bool {
		if _, dup := seen[e.Envelope().EventID]; dup {
			rep.Ignored++
			return false
		}
		seen[e.Envelope().EventID] = struct{}{}
		return true
	}
	r := events.NewRouter()
	events.On(r, func(_ context.Context, e *eventmodels.JobSubmitted) error {
		if !seenOnce(e) {
			return nil
		}
		if found[e.JobID] == nil {
			found[e.JobID] = newJob(e.JobID, e.UserID, e.Spec, e.CorrelationID)
			order = append(order, e.JobID)
		}
		s.restoreApply(&rep, found[e.JobID], e)
		return nil
	})
	events.OnEvent(r, func(_ context.Context, e eventmodels.Event) error {
		if !seenOnce(e) {
			return nil
		}
		j := found[e.Key()]
		if j == nil {
			rep.Skipped++
			s.log.Warn("restore: event of a job whose submission is no longer retained", "job", e.Key(), "type", e.Envelope().EventType)
			return nil
		}
		s.restoreApply(&rep, j, e)
		return nil
	})
	h, err := s.cfg.Durable.Handler(r)
	if err != nil {
		return rep, err
	}
	err = s.cfg.Replayer.Replay(ctx, eventmodels.TopicJobLifecycle, func(ctx context.Context, m *broker.Message) error {
		mu.Lock()
		defer mu.Unlock()
		if err := h(ctx, m); err != nil {
			rep.Skipped++
			s.log.Warn("restore: undecodable lifecycle message skipped", "partition", m.Delivery.Partition, "offset", m.Delivery.Offset, "error", err)
		}
		return nil
	})
	if err != nil {
		return rep, fmt.Errorf("orchestrator: replay of %s: %w", eventmodels.TopicJobLifecycle, err)
	}
	s.mu.Lock()
	for _, id := range order {
		if _, exists := s.jobs[id]; exists {
			continue
		}
		s.jobs[id] = found[id]
		if n := s.jobNumber(id); n >= s.next {
			s.next = n + 1
		}
	}
	s.mu.Unlock()
	rep.Jobs = len(order)
	for _, id := range order {
		j := found[id]
		if j.terminal() {
			rep.Finished++
		} else {
			rep.Resumed++
			j.resumeStep(s.cfg.Sim.ProgressSteps)
		}
		s.start(j)
	}
	return rep, nil
}

// restoreApply applies a replayed event to its job, or counts it ignored
// when the job's status does not allow it.
func (s *Service) restoreApply(rep *RestoreReport, j *job, e eventmodels.Event) {
	if err := j.apply(e); err != nil {
		rep.Ignored++
		s.log.Warn("restore: event does not follow the job's status, ignored", "job", j.id, "type", e.Envelope().EventType, "event_id", e.Envelope().EventID)
		return
	}
	rep.Events++
}
