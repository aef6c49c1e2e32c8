package opsview

import (
	"context"
	"errors"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
)

// HealthSource is a health service's latest round and counters;
// *healthsvc.Service is one.
type HealthSource interface {
	Last() (healthsvc.Report, bool)
	Stats() healthsvc.Stats
}

// Config configures a View.
type Config struct {
	// Collector counts this process's publishing and consumption.
	// Required.
	Collector *Collector
	// Health, if set, gives broker reachability, consumer lag and alerts
	// (a health service's rounds). Without it the View probes Checkers
	// itself every ProbeEvery for reachability and lag (no alerts).
	Health   HealthSource
	Checkers map[string]broker.HealthChecker
	// Interval between samples; default 1s. Span of the series kept;
	// default 10m.
	Interval, Span time.Duration
	// ProbeEvery is how often Checkers are probed without Health; default
	// 5s. ProbeTimeout bounds a probe; default 2s.
	ProbeEvery, ProbeTimeout time.Duration
	// Clock; default time.Now.
	Clock func() time.Time
	// Logger; default discard.
	Logger *slog.Logger
}

// Validate reports every problem of c.
func (c Config) Validate() error {
	var errs []error
	if c.Collector == nil {
		errs = append(errs, errors.New("opsview: Config.Collector is required"))
	}
	if c.Interval < 0 || c.Span < 0 || c.ProbeEvery < 0 || c.ProbeTimeout < 0 {
		errs = append(errs, errors.New("opsview: Interval, Span, ProbeEvery and ProbeTimeout must not be negative"))
	}
	if c.Interval > 0 && c.Span > 0 && c.Span < c.Interval {
		errs = append(errs, errors.New("opsview: Span must be at least one Interval"))
	}
	return errors.Join(errs...)
}

func (c *Config) setDefaults() {
	if c.Interval == 0 {
		c.Interval = time.Second
	}
	if c.Span == 0 {
		c.Span = 10 * time.Minute
	}
	if c.ProbeEvery == 0 {
		c.ProbeEvery = 5 * time.Second
	}
	if c.ProbeTimeout == 0 {
		c.ProbeTimeout = 2 * time.Second
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Sample is what the View saw at one instant. Rates are per second over
// the interval since the previous sample.
type Sample struct {
	Time          time.Time
	PublishRate   map[string]float64 // per topic
	ConsumeRate   map[string]float64 // per topic
	Lag           map[string]int64   // per consumer group, summed over its topics and partitions
	P50MS, P99MS  map[string]float64 // per group, handler attempts in the interval
	RetryRate     float64
	DeadLetters   int64 // in the interval
	BrokersUp     map[string]bool
	AlertsActive  int
	AlertsRaised  int64 // in the interval
	AlertsCleared int64 // in the interval
}

// AlertEvent is an alert raised or cleared, for the view's log.
type AlertEvent struct {
	Time     time.Time `json:"time"`
	Cleared  bool      `json:"cleared"`
	Kind     string    `json:"kind"`
	Subject  string    `json:"subject"`
	Severity string    `json:"severity"`
	Message  string    `json:"message"`
}

// View samples a Collector and the health figures into a ring buffer and
// serves them. Its methods are safe for concurrent use.
type View struct {
	cfg Config

	mu       sync.Mutex
	samples  []Sample // ring, oldest at start once full
	start    int
	prev     Totals
	prevT    time.Time
	prevH    healthsvc.Stats
	lastRnd  time.Time // the health round last logged
	alerts   []AlertEvent
	probed   time.Time
	lastLag  map[string]int64
	lastUp   map[string]bool
	capacity int
}

// maxAlertLog bounds the alert log.
const maxAlertLog = 200

// New validates cfg and returns a View; Run (or Sample) fills it.
func New(cfg Config) (*View, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg.setDefaults()
	v := &View{cfg: cfg, capacity: int(cfg.Span / cfg.Interval)}
	v.prev, _ = cfg.Collector.Take()
	v.prevT = cfg.Clock()
	if cfg.Health != nil {
		v.prevH = cfg.Health.Stats()
	}
	return v, nil
}

// Run samples every Interval until ctx ends, then returns nil.
func (v *View) Run(ctx context.Context) error {
	t := time.NewTicker(v.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			v.Sample(ctx)
		}
	}
}

// Sample takes one sample now.
func (v *View) Sample(ctx context.Context) {
	now := v.cfg.Clock()
	tot, lat := v.cfg.Collector.Take()
	s := Sample{Time: now, PublishRate: map[string]float64{}, ConsumeRate: map[string]float64{},
		P50MS: map[string]float64{}, P99MS: map[string]float64{}}
	for g, l := range lat {
		s.P50MS[g], s.P99MS[g] = ms(l.P50), ms(l.P99)
	}
	var rep healthsvc.Report
	var haveRep bool
	var hs healthsvc.Stats
	if v.cfg.Health != nil {
		rep, haveRep = v.cfg.Health.Last()
		hs = v.cfg.Health.Stats()
	}
	var lag map[string]int64
	var up map[string]bool
	if haveRep {
		lag, up = fromReport(rep)
	} else if v.cfg.Health == nil && len(v.cfg.Checkers) > 0 {
		lag, up = v.probe(ctx, now)
	}

	v.mu.Lock()
	defer v.mu.Unlock()
	secs := now.Sub(v.prevT).Seconds()
	if secs <= 0 {
		secs = v.cfg.Interval.Seconds()
	}
	for topic, n := range tot.Published {
		s.PublishRate[topic] = float64(n-v.prev.Published[topic]) / secs
	}
	for topic, n := range tot.Consumed {
		s.ConsumeRate[topic] = float64(n-v.prev.Consumed[topic]) / secs
	}
	s.RetryRate = float64(tot.Retries-v.prev.Retries) / secs
	s.DeadLetters = tot.DeadLetters - v.prev.DeadLetters
	s.Lag, s.BrokersUp = lag, up
	if v.cfg.Health != nil {
		s.AlertsRaised, s.AlertsCleared = hs.AlertsRaised-v.prevH.AlertsRaised, hs.AlertsCleared-v.prevH.AlertsCleared
		v.prevH = hs
	}
	if haveRep {
		s.AlertsActive = len(rep.Active)
		if rep.Time.After(v.lastRnd) {
			v.lastRnd = rep.Time
			v.logAlerts(rep)
		}
	}
	v.prev, v.prevT = tot, now
	if v.capacity < 1 {
		v.capacity = 1
	}
	if len(v.samples) < v.capacity {
		v.samples = append(v.samples, s)
	} else {
		v.samples[v.start] = s
		v.start = (v.start + 1) % v.capacity
	}
}

// probe asks the checkers for reachability and lag every ProbeEvery and
// carries the last answer forward in between.
func (v *View) probe(ctx context.Context, now time.Time) (map[string]int64, map[string]bool) {
	v.mu.Lock()
	due := v.probed.IsZero() || now.Sub(v.probed) >= v.cfg.ProbeEvery
	lag, up := v.lastLag, v.lastUp
	v.mu.Unlock()
	if !due {
		return lag, up
	}
	lag, up = map[string]int64{}, map[string]bool{}
	for name, c := range v.cfg.Checkers {
		pctx, cancel := context.WithTimeout(ctx, v.cfg.ProbeTimeout)
		r, err := c.Health(pctx)
		cancel()
		up[name] = err == nil && r != nil && r.Status != broker.HealthUnhealthy
		if r != nil {
			for _, l := range r.Lag {
				lag[l.Group] += max(l.Lag, 0)
			}
		}
	}
	v.mu.Lock()
	v.probed, v.lastLag, v.lastUp = now, lag, up
	v.mu.Unlock()
	return lag, up
}

func fromReport(rep healthsvc.Report) (map[string]int64, map[string]bool) {
	lag, up := map[string]int64{}, map[string]bool{}
	for _, b := range rep.Backends {
		up[b.Name] = !b.Down
		for _, l := range b.Lag {
			lag[l.Group] += max(l.Total, 0)
		}
	}
	return lag, up
}

func (v *View) logAlerts(rep healthsvc.Report) {
	add := func(a healthsvc.Alert, cleared bool) {
		v.alerts = append(v.alerts, AlertEvent{Time: rep.Time, Cleared: cleared, Kind: string(a.Kind),
			Subject: a.Subject, Severity: string(a.Severity), Message: a.Message})
	}
	for _, a := range rep.Raised {
		add(a, false)
	}
	for _, a := range rep.Cleared {
		add(a, true)
	}
	if over := len(v.alerts) - maxAlertLog; over > 0 {
		v.alerts = append(v.alerts[:0:0], v.alerts[over:]...)
	}
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// Series is the JSON the page draws: one column per series, aligned on
// Time (Unix seconds); a value is null where the series had no figure.
type Series struct {
	Samples       int                         `json:"samples"`
	Interval      float64                     `json:"interval_seconds"`
	Time          []float64                   `json:"time"`
	PublishRate   map[string][]*float64       `json:"publish_rate"`
	ConsumeRate   map[string][]*float64       `json:"consume_rate"`
	Lag           map[string][]*float64       `json:"lag"`
	P50MS         map[string][]*float64       `json:"p50_ms"`
	P99MS         map[string][]*float64       `json:"p99_ms"`
	RetryRate     []float64                   `json:"retry_rate"`
	DeadLetters   []float64                   `json:"dead_letters"`
	BrokersUp     map[string][]*float64       `json:"brokers_up"`
	AlertsActive  []float64                   `json:"alerts_active"`
	AlertsRaised  []float64                   `json:"alerts_raised"`
	AlertsCleared []float64                   `json:"alerts_cleared"`
	AlertLog      []AlertEvent                `json:"alert_log"`
	Totals        map[string]map[string]int64 `json:"totals"`
}

// Series returns the samples kept, oldest first, as columns.
func (v *View) Series() Series {
	v.mu.Lock()
	defer v.mu.Unlock()
	ss := make([]Sample, 0, len(v.samples))
	ss = append(ss, v.samples[v.start:]...)
	ss = append(ss, v.samples[:v.start]...)
	n := len(ss)
	out := Series{Samples: n, Interval: v.cfg.Interval.Seconds(), Time: make([]float64, n),
		RetryRate: make([]float64, n), DeadLetters: make([]float64, n),
		AlertsActive: make([]float64, n), AlertsRaised: make([]float64, n), AlertsCleared: make([]float64, n),
		AlertLog: append([]AlertEvent{}, v.alerts...),
		Totals:   map[string]map[string]int64{"published": clone(v.prev.Published), "consumed": clone(v.prev.Consumed)},
	}
	for i, s := range ss {
		out.Time[i] = float64(s.Time.UnixMilli()) / 1000
		out.RetryRate[i], out.DeadLetters[i] = s.RetryRate, float64(s.DeadLetters)
		out.AlertsActive[i], out.AlertsRaised[i], out.AlertsCleared[i] = float64(s.AlertsActive), float64(s.AlertsRaised), float64(s.AlertsCleared)
	}
	out.PublishRate = columns(ss, func(s Sample) map[string]float64 { return s.PublishRate })
	out.ConsumeRate = columns(ss, func(s Sample) map[string]float64 { return s.ConsumeRate })
	out.P50MS = columns(ss, func(s Sample) map[string]float64 { return s.P50MS })
	out.P99MS = columns(ss, func(s Sample) map[string]float64 { return s.P99MS })
	out.Lag = columns(ss, func(s Sample) map[string]float64 {
		m := make(map[string]float64, len(s.Lag))
		for k, x := range s.Lag {
			m[k] = float64(x)
		}
		return m
	})
	out.BrokersUp = columns(ss, func(s Sample) map[string]float64 {
		m := make(map[string]float64, len(s.BrokersUp))
		for k, ok := range s.BrokersUp {
			m[k] = 0
			if ok {
				m[k] = 1
			}
		}
		return m
	})
	return out
}

// columns turns per-sample maps into one column per key seen, null where
// a sample lacks the key.
func columns(ss []Sample, get func(Sample) map[string]float64) map[string][]*float64 {
	keys := map[string]bool{}
	for _, s := range ss {
		for k := range get(s) {
			keys[k] = true
		}
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make(map[string][]*float64, len(names))
	for _, k := range names {
		col := make([]*float64, len(ss))
		for i, s := range ss {
			if x, ok := get(s)[k]; ok {
				col[i] = &x
			}
		}
		out[k] = col
	}
	return out
}
