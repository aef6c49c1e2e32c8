package benchcore

import (
	"context"
	"time"
)

// Pacer releases events on an absolute schedule: event n is due at
// start + n/rate. A publisher that falls behind catches up at once (the
// schedule does not slide), so the offered rate holds on average however
// coarse the sleeps are; a zero rate means as fast as possible.
type Pacer struct {
	rate  float64
	start time.Time
}

// NewPacer returns a pacer offering rate events per second from start;
// rate 0 (or negative) means no pacing.
func NewPacer(rate float64, start time.Time) *Pacer {
	return &Pacer{rate: max(rate, 0), start: start}
}

// Rate returns the offered rate, 0 for as fast as possible.
func (p *Pacer) Rate() float64 { return p.rate }

// At returns when event n is due (start for every event without pacing).
func (p *Pacer) At(n uint64) time.Time {
	if p.rate == 0 {
		return p.start
	}
	return p.start.Add(time.Duration(float64(n) / p.rate * float64(time.Second)))
}

// Due returns how many events are due at now (events 0..Due-1); without
// pacing it is unbounded (the largest uint64).
func (p *Pacer) Due(now time.Time) uint64 {
	if p.rate == 0 {
		return ^uint64(0)
	}
	el := now.Sub(p.start)
	if el < 0 {
		return 0
	}
	return uint64(el.Seconds()*p.rate) + 1
}

// Wait sleeps until event n is due or ctx ends (returning ctx's error).
// Sleeping here is the load's pacing, not synchronisation.
func (p *Pacer) Wait(ctx context.Context, n uint64) error {
	d := time.Until(p.At(n))
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
