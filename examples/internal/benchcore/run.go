package benchcore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// RunConfig says how much load a run offers.
type RunConfig struct {
	// Rate is the offered rate, events/s over all publishers; 0 means as
	// fast as the publishers go.
	Rate float64
	// Count is the number of events to send; 0 means until Duration.
	Count int64
	// Duration bounds the publishing phase; 0 means until Count. With
	// both, whichever comes first ends it.
	Duration time.Duration
	// Publishers is the number of goroutines calling Publish (N); each
	// waits for its call's confirmation, so at most Publishers×Batch
	// events are in flight from publishing. Default 16.
	Publishers int
	// Batch is the number of events per Publish call; default 1.
	Batch int
	// Warmup is the first part of the publishing phase whose events count
	// in every figure but the latencies (connections, fetch sessions and
	// caches settle then); 0 measures from the first event.
	Warmup time.Duration
	// Drain bounds the wait, after publishing, for the last acknowledged
	// events to be consumed; what is still missing then is lost. Default
	// 30s.
	Drain time.Duration
	// Progress receives a live progress line every ProgressInterval
	// (default 1s); nil for none. With Overwrite, each line replaces the
	// previous one (a terminal), else lines follow each other (a log).
	Progress         io.Writer
	ProgressInterval time.Duration
	Overwrite        bool
}

// ErrRunConfig is matched by Run's error for a configuration it cannot
// run.
var ErrRunConfig = errors.New("benchcore: invalid run configuration")

func (c RunConfig) withDefaults() RunConfig {
	if c.Publishers == 0 {
		c.Publishers = 16
	}
	if c.Batch == 0 {
		c.Batch = 1
	}
	if c.Drain == 0 {
		c.Drain = 30 * time.Second
	}
	if c.ProgressInterval == 0 {
		c.ProgressInterval = time.Second
	}
	return c
}

// Validate reports what is wrong with c (after defaults).
func (c RunConfig) Validate() error {
	c = c.withDefaults()
	var errs []error
	if c.Count <= 0 && c.Duration <= 0 {
		errs = append(errs, errors.New("a run needs a count or a duration"))
	}
	if c.Count < 0 || c.Duration < 0 || c.Rate < 0 || c.Drain < 0 || c.Warmup < 0 {
		errs = append(errs, errors.New("count, duration, rate, warmup and drain must not be negative"))
	}
	if c.Duration > 0 && c.Warmup >= c.Duration {
		errs = append(errs, fmt.Errorf("warmup %v leaves nothing of duration %v to measure", c.Warmup, c.Duration))
	}
	if c.Publishers < 1 || c.Batch < 1 {
		errs = append(errs, errors.New("publishers and batch must be at least 1"))
	}
	if c.Count > MaxSeq {
		errs = append(errs, fmt.Errorf("count %d is above %d", c.Count, int64(MaxSeq)))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrRunConfig, errors.Join(errs...))
	}
	return nil
}

// Run starts drv, offers it the load cfg describes, waits for the last
// events, and returns the figures in a copy of base (which carries the
// descriptive fields: backend, mode, publishers…). It does not close drv.
//
// The error is about the run itself: invalid configuration, a driver that
// cannot start, ctx cancelled. Lost events are not an error: they are in
// the Result (and Result.OK reports them). A failing Publish is counted in
// Result.Failed and its first error returned as publishErr.
func Run(ctx context.Context, cfg RunConfig, drv Driver, run RunID, base Result) (res Result, publishErr error, err error) {
	if err := cfg.Validate(); err != nil {
		return base, nil, err
	}
	cfg = cfg.withDefaults()
	c := NewCollector(run)
	if err := drv.Start(ctx, c); err != nil {
		return base, nil, fmt.Errorf("benchcore: start %s/%s: %w", base.Backend, base.Mode, err)
	}
	runtime.GC()
	ResetPeakRSS()
	cpu0 := CPUTime()

	res = base
	res.Started = time.Now()
	res.OfferedRate = cfg.Rate
	res.Batch, res.Publishers, res.Runs = cfg.Batch, cfg.Publishers, 1
	start := time.Now()
	c.MeasureFrom(start.Add(cfg.Warmup))
	res.Warmup = cfg.Warmup.Seconds()
	pacer := NewPacer(cfg.Rate, start)
	var deadline time.Time
	if cfg.Duration > 0 {
		deadline = start.Add(cfg.Duration)
	}
	var pubErr error
	published := make(chan struct{})
	go func() { pubErr = publishLoad(ctx, cfg, drv, c, pacer, deadline); close(published) }()
	stopProgress := c.progress(cfg, start, deadline, published)

	<-published
	pubEnd := time.Now()
	dctx, cancel := context.WithTimeout(ctx, cfg.Drain)
	_ = c.ledger.WaitDrained(dctx) // what is still missing is reported as lost
	cancel()
	cpu := CPUTime() - cpu0
	rss := PeakRSS()
	stopProgress()

	counts := res.account(c, start, pubEnd)
	if last := c.LastConsume(); !last.IsZero() && last.After(start) {
		res.Throughput = float64(counts.Consumed) / last.Sub(start).Seconds()
	}
	res.CPUSeconds = cpu.Seconds()
	res.PeakRSSMiB = float64(rss) / (1 << 20)
	publishErr = pubErr
	if err := ctx.Err(); err != nil {
		return res, publishErr, err
	}
	return res, publishErr, nil
}

// account fills res with c's accounting and latencies for a run that
// published from start to pubEnd, and returns the counts.
func (res *Result) account(c *Collector, start, pubEnd time.Time) Counts {
	counts := c.ledger.Counts()
	pub, e2e := c.Latency()
	res.Seconds = pubEnd.Sub(start).Seconds()
	res.Sent, res.Acked, res.Failed = counts.Sent, counts.Acked, counts.Failed
	res.Consumed, res.Lost, res.Duplicates = counts.Consumed, counts.Lost(), counts.Duplicates
	res.Unconfirmed, res.Foreign = counts.Unconfirmed(), counts.Foreign+counts.OutOfRange
	if res.Seconds > 0 {
		res.PublishRate = float64(counts.Acked) / res.Seconds
	}
	res.Publish, res.EndToEnd = LatencyOf(pub), LatencyOf(e2e)
	return counts
}

// progress prints a progress line every interval until the returned
// function is called (which prints the last one and waits for the printer
// to end).
func (c *Collector) progress(cfg RunConfig, start, deadline time.Time, published <-chan struct{}) (stop func()) {
	if cfg.Progress == nil {
		return func() {}
	}
	done := make(chan struct{})
	ended := make(chan struct{})
	var lastConsumed int64
	lastAt := start
	line := func(final bool) {
		now := time.Now()
		counts := c.ledger.Counts()
		_, e2e := c.Window()
		p := Progress{Elapsed: now.Sub(start), Sent: counts.Sent, Consumed: counts.Consumed, Pending: max(counts.Lost(), 0), P99: e2e.P99}
		if dt := now.Sub(lastAt).Seconds(); dt > 0 {
			p.Rate = float64(counts.Consumed-lastConsumed) / dt
		}
		lastConsumed, lastAt = counts.Consumed, now
		switch {
		case cfg.Count > 0:
			p.Fraction = float64(counts.Consumed) / float64(cfg.Count)
		case !deadline.IsZero():
			p.Fraction = now.Sub(start).Seconds() / deadline.Sub(start).Seconds()
		}
		select {
		case <-published:
			p.Draining = counts.Lost() > 0 && !final
			if !p.Draining {
				p.Fraction = 1
			}
		default:
		}
		end := "\n"
		if cfg.Overwrite {
			end = "\x1b[K"
			if final {
				end += "\n"
			}
			fmt.Fprint(cfg.Progress, "\r")
		}
		fmt.Fprint(cfg.Progress, p.String()+end)
	}
	go func() {
		defer close(ended)
		t := time.NewTicker(cfg.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				line(false)
			case <-done:
				line(true)
				return
			}
		}
	}()
	return func() { close(done); <-ended }
}

// publishLoad runs cfg.Publishers publishers offering drv the load cfg
// describes on pacer's schedule until deadline (zero: none) or cfg.Count,
// recording every call in c, and returns the first error a Publish call
// returned once all have finished.
func publishLoad(ctx context.Context, cfg RunConfig, drv Driver, c *Collector, pacer *Pacer, deadline time.Time) error {
	var next atomic.Uint64
	var firstErr atomic.Pointer[error]
	var wg sync.WaitGroup
	for range cfg.Publishers {
		wg.Go(func() {
			batch := uint64(cfg.Batch)
			for ctx.Err() == nil {
				first := next.Add(batch) - batch
				n := batch
				if cfg.Count > 0 {
					if first >= uint64(cfg.Count) {
						return
					}
					n = min(n, uint64(cfg.Count)-first)
				}
				last := first + n - 1
				if !deadline.IsZero() && pacer.At(last).After(deadline) {
					return
				}
				if pacer.Wait(ctx, last) != nil {
					return
				}
				if !deadline.IsZero() && time.Now().After(deadline) {
					return
				}
				c.ledger.Sent(int(n))
				t0 := time.Now()
				err := drv.Publish(ctx, first, int(n), strconv.FormatInt(t0.UnixNano(), 10))
				c.Published(first, int(n), t0, time.Since(t0), err)
				if err != nil {
					firstErr.CompareAndSwap(nil, &err)
				}
			}
		})
	}

	wg.Wait()
	if p := firstErr.Load(); p != nil {
		return *p
	}
	return nil
}
