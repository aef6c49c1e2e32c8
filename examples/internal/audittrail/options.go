package audittrail

import (
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// DefaultRetention is how long segments are kept when no Retention option
// is given: 90 days, the retention of the audit-trail topic.
const DefaultRetention = 90 * 24 * time.Hour

// Option configures Open.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// Clock makes the trail read the time from now instead of time.Now. The
// clock decides which daily segment a record goes to (its UTC date), the
// recorded_at field, and which segments Prune removes. Tests inject a
// settable clock to cross midnight or ninety days in one step. now is
// called concurrently and must be safe for that. Default time.Now.
func Clock(now func() time.Time) Option {
	return optionFunc(func(c *config) { c.now = now })
}

// Retention sets how long segments are kept: Prune removes a segment once
// its whole UTC day lies more than d in the past. Must not be negative;
// zero means the default, DefaultRetention (90 days).
func Retention(d time.Duration) Option {
	return optionFunc(func(c *config) { c.retention = d })
}

// Logger sets where the trail reports what it repaired or noticed on Open
// (torn tails, chain breaks, leftovers of an interrupted Prune) and what
// Prune removed. Default: a logger that discards everything.
func Logger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}

// CommitDelay is the group-commit tuning knob: the goroutine that is about
// to fsync on behalf of every pending Append first waits d, so that more
// appenders can join the same fsync. It trades latency of each Append for
// fewer fsyncs under load. Group commit happens without it too (appends
// written while an fsync runs share the next one), so the default 0 is
// right unless fsync is much slower than the arrival interval. Must not be
// negative.
func CommitDelay(d time.Duration) Option {
	return optionFunc(func(c *config) { c.commitDelay = d })
}

type config struct {
	now         func() time.Time
	retention   time.Duration
	logger      *slog.Logger
	commitDelay time.Duration
}

func (c *config) setDefaults() {
	if c.now == nil {
		c.now = time.Now
	}
	if c.retention == 0 {
		c.retention = DefaultRetention
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
}

func (c *config) validate() error {
	var errs []error
	if c.retention < 0 {
		errs = append(errs, fmt.Errorf("retention %v must not be negative", c.retention))
	}
	if c.commitDelay < 0 {
		errs = append(errs, fmt.Errorf("commit delay %v must not be negative", c.commitDelay))
	}
	return errors.Join(errs...)
}
