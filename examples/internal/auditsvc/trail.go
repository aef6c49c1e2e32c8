package auditsvc

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cosmic-horizons/events/examples/internal/audittrail"
)

// ByJob returns the records of a job in trail order (what GET /audit
// serves): only acknowledged (fsynced) records, each checked against its
// own hash (an error wrapping audittrail.ErrCorrupt otherwise). A job
// without records gives an empty slice.
func (s *Service) ByJob(ctx context.Context, jobID string) ([]audittrail.Record, error) {
	var recs []audittrail.Record
	err := s.withTrail(func(tr *audittrail.Trail) error {
		var err error
		recs, err = tr.ByJob(ctx, jobID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("auditsvc: trail of job %q: %w", jobID, err)
	}
	return recs, nil
}

// Verify verifies the whole chain of the open trail, from the anchor or
// the genesis to the head it has written (audittrail.Trail.Verify). One
// verification runs at a time; others wait for it (or for ctx). The error
// is for failures to read; a broken chain is in the report.
func (s *Service) Verify(ctx context.Context) (*audittrail.VerifyReport, error) {
	select {
	case s.verify <- struct{}{}:
		defer func() { <-s.verify }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var rep *audittrail.VerifyReport
	err := s.withTrail(func(tr *audittrail.Trail) error {
		var err error
		rep, err = tr.Verify(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("auditsvc: verify: %w", err)
	}
	return rep, nil
}

// Prune removes the segments older than the retention, writing the chain
// anchor first so that verification still works (audittrail.Trail.Prune),
// and returns their names.
func (s *Service) Prune(ctx context.Context) ([]string, error) {
	var removed []string
	err := s.withTrail(func(tr *audittrail.Trail) error {
		var err error
		removed, err = tr.Prune(ctx)
		return err
	})
	s.pruned.Add(int64(len(removed)))
	if len(removed) > 0 {
		s.log.Info("audit: retention removed segments", "segments", removed, "retention", s.cfg.Retention)
	}
	if err != nil {
		return removed, fmt.Errorf("auditsvc: prune: %w", err)
	}
	return removed, nil
}

// RunRetention prunes at once and then every interval until ctx ends (it
// then returns nil) or the service is closed (an error wrapping ErrClosed).
// Other prune failures are logged and tried again at the next tick.
func (s *Service) RunRetention(ctx context.Context, every time.Duration) error {
	if every <= 0 {
		return fmt.Errorf("auditsvc: retention interval %v must be positive", every)
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		if _, err := s.Prune(ctx); err != nil {
			switch {
			case ctx.Err() != nil:
				return nil
			case errors.Is(err, ErrClosed):
				return err
			}
			s.log.ErrorContext(ctx, "audit: retention failed; trying again at the next tick", "error", err, "every", every)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}
