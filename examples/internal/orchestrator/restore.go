package orchestrator

import (
	"context"
	"fmt"
	"sync"

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
	err := s.cfg.Replayer.Replay(ctx, eventmodels.TopicJobLifecycle, func(ctx context.Context, m *broker.Message) error {
		e, err := s.dec.Decode(m)
		mu.Lock()
		defer mu.Unlock()
		if err != nil {
			rep.Skipped++
			s.log.Warn("restore: undecodable lifecycle message skipped", "partition", m.Delivery.Partition, "offset", m.Delivery.Offset, "error", err)
			return nil
		}
		env := e.Envelope()
		if _, dup := seen[env.EventID]; dup {
			rep.Ignored++
			return nil
		}
		seen[env.EventID] = struct{}{}
		id := e.Key()
		j := found[id]
		if sub, ok := e.(*eventmodels.JobSubmitted); ok && j == nil {
			j = newJob(id, sub.UserID, sub.Spec, sub.CorrelationID)
			found[id] = j
			order = append(order, id)
		} else if j == nil {
			rep.Skipped++
			s.log.Warn("restore: event of a job whose submission is no longer retained", "job", id, "type", env.EventType)
			return nil
		} else if !j.follows(e) {
			rep.Ignored++
			s.log.Warn("restore: event does not follow the job's status, ignored", "job", id, "type", env.EventType, "event_id", env.EventID)
			return nil
		}
		rep.Events++
		j.apply(e)
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
