package benchcore

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"time"
)

// ErrNotBacklogger is returned by RunDrain for a driver that cannot
// publish before it subscribes.
var ErrNotBacklogger = errors.New("benchcore: driver cannot publish before subscribing")

// RunDrain measures publish-then-drain: it prepares drv (topic, group,
// queue; nobody consuming), offers it the load cfg describes (usually
// Count events as fast as the publishers go), and once every publisher has
// returned subscribes the consumer-group members and waits for the backlog
// to be consumed (up to cfg.Drain; what is missing then is lost). The
// accounting is Run's: every acknowledged event must be consumed once.
//
// Besides Run's figures, the Result has DrainRate (first to last
// consumption), DrainSeconds and FirstEventSeconds (from the Subscribe
// call), and the process's CPU time split between the publishing phase
// (PublishCPUSeconds: publishers alone, nothing consumed) and the drain
// (DrainCPUSeconds). Throughput is DrainRate. Latencies are the publish
// calls'; publish→consume is the time spent in the backlog.
func RunDrain(ctx context.Context, cfg RunConfig, drv Driver, run RunID, base Result) (res Result, publishErr error, err error) {
	if err := cfg.Validate(); err != nil {
		return base, nil, err
	}
	bl, ok := drv.(Backlogger)
	if !ok {
		return base, nil, fmt.Errorf("%w: %T", ErrNotBacklogger, drv)
	}
	cfg = cfg.withDefaults()
	c := NewCollector(run)
	if err := bl.Prepare(ctx); err != nil {
		return base, nil, fmt.Errorf("benchcore: prepare %s/%s: %w", base.Backend, base.Mode, err)
	}
	runtime.GC()
	ResetPeakRSS()
	cpu0 := CPUTime()

	res = base
	res.Scenario = ScenarioDrain
	res.Started = time.Now()
	res.OfferedRate = cfg.Rate
	res.Batch, res.Publishers, res.Runs = cfg.Batch, cfg.Publishers, 1
	start := time.Now()
	c.MeasureFrom(start.Add(cfg.Warmup))
	res.Warmup = cfg.Warmup.Seconds()
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	publishErr = publishLoad(ctx, cfg, drv, c, NewPacer(cfg.Rate, start), deadline)
	pubEnd := time.Now()
	cpu1 := CPUTime()
	res.PublishCPUSeconds = (cpu1 - cpu0).Seconds()

	subStart := time.Now()
	if ctx.Err() == nil {
		if err := bl.Subscribe(ctx, c); err != nil {
			return res, publishErr, fmt.Errorf("benchcore: subscribe %s/%s: %w", base.Backend, base.Mode, err)
		}
		dctx, cancel := context.WithTimeout(ctx, cfg.Drain)
		_ = c.ledger.WaitDrained(dctx) // what is still missing is reported as lost
		cancel()
	}
	cpu2 := CPUTime()
	res.DrainCPUSeconds = (cpu2 - cpu1).Seconds()
	res.CPUSeconds = (cpu2 - cpu0).Seconds()
	res.PeakRSSMiB = float64(PeakRSS()) / (1 << 20)

	counts := res.account(c, start, pubEnd)
	first, last := c.FirstConsume(), c.LastConsume()
	if !first.IsZero() {
		res.FirstEventSeconds = first.Sub(subStart).Seconds()
		res.DrainSeconds = last.Sub(subStart).Seconds()
		if d := last.Sub(first).Seconds(); d > 0 && counts.Consumed > 1 {
			res.DrainRate = float64(counts.Consumed-1) / d
		}
	}
	res.Throughput = res.DrainRate
	return res, publishErr, ctx.Err()
}
