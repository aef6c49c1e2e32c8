package orchestrator

import (
	"context"
	"fmt"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
)

// RestoreReport says what Restore found.
type RestoreReport struct {
	Events   int // lifecycle events replayed
	Jobs     int // jobs seen
	Resumed  int // unfinished jobs started again
	Finished int // jobs already terminal
	Skipped  int // messages that did not decode (logged)
}

// Restore rebuilds the jobs recorded in job-lifecycle and resumes every
// unfinished one from its last published transition. Call it once, before
// serving, on a service with no jobs of its own yet. Job numbering continues
// after the highest number found.
func (s *Service) Restore(ctx context.Context) (RestoreReport, error) {
	var rep RestoreReport
	if s.cfg.Replayer == nil {
		return rep, nil
	}
	found := map[string]*job{}
	order := []string{}
	err := s.cfg.Replayer.Replay(ctx, eventmodels.TopicJobLifecycle, func(ctx context.Context, m *broker.Message) error {
		e, err := s.dec.Decode(m)
		if err != nil {
			rep.Skipped++
			s.log.Warn("restore: undecodable lifecycle message skipped", "partition", m.Delivery.Partition, "offset", m.Delivery.Offset, "error", err)
			return nil
		}
		rep.Events++
		id := e.Key()
		j := found[id]
		if sub, ok := e.(*eventmodels.JobSubmitted); ok && j == nil {
			j = newJob(id, sub.UserID, sub.Spec, sub.CorrelationID)
			found[id] = j
			order = append(order, id)
		}
		if j == nil {
			rep.Skipped++
			s.log.Warn("restore: event of a job whose submission is no longer retained", "job", id, "type", e.Envelope().EventType)
			return nil
		}
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
