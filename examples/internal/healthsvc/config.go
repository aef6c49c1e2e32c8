package healthsvc

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
)

// Defaults of a Config.
const (
	DefaultInterval     = 5 * time.Second
	DefaultLag          = 1000
	DefaultStuck        = time.Minute
	DefaultErrorRate    = 0.01
	DefaultP99          = 500 * time.Millisecond
	DefaultWindow       = time.Minute
	DefaultMinSamples   = 100
	DefaultClearRatio   = 0.8
	DefaultClearAfter   = 2
	DefaultFireAfter    = 1
	DefaultRecipient    = "ops"
	DefaultUserID       = "system-health"
	DefaultMaxPending   = 1000
	DefaultImbalance    = 2.0
	DefaultDiskUsage    = 80.0
	DefaultHistory      = 1000
	defaultStaleFactor  = 4
	minCheckTimeout     = 100 * time.Millisecond
	maxComponentChecks  = 64 // eventmodels' limit on SystemHealth.Checks
	componentPrefixSvc  = "service:"
	componentPrefixBack = "backend:"
	componentSystem     = "system"
)

// ErrInvalidConfig is returned by New (wrapping every problem found) for a
// Config that fails Validate.
var ErrInvalidConfig = errors.New("healthsvc: invalid config")

// Config wires the service. The zero value of every field but Checkers
// means its default.
type Config struct {
	// Checkers are the backends to probe, by name ("kafka", "rabbitmq",
	// "memory"): kafkabus.Backend, rabbitbus.Backend and memory.Backend all
	// implement broker.HealthChecker. The name appears in alerts, health
	// events and /readyz. At least one checker or a Signals source is
	// required.
	Checkers map[string]broker.HealthChecker
	// Signals, if set, reports the handler outcomes, dead letters and
	// processing latency of the services (see Recorder). Nil: no error-rate
	// or latency alerts.
	Signals SignalSource
	// Publisher publishes a system.health event per component each round
	// (topic system-health) and an alert notification when an alert starts
	// and when it clears (topic notifications). Nil: nothing is published;
	// Check, Alerts and the HTTP handler still work.
	Publisher *events.Bus
	// Interval between rounds of Run; default 5s.
	Interval time.Duration
	// CheckTimeout bounds each checker's Health call, and separately the
	// publishing of a round; a checker that does not answer in time counts as unreachable.
	// Default Interval, at least 100ms.
	CheckTimeout time.Duration
	// Thresholds are the alert lines.
	Thresholds Thresholds
	// Hysteresis says when an alert starts and clears.
	Hysteresis Hysteresis
	// ExpectedBrokers is the broker count of each Kafka checker's cluster
	// (by checker name). Kafka drops a dead broker from its metadata, so a
	// cluster of 3 that lost one looks like a healthy cluster of 2; the
	// service compares the "brokers" check's count with this figure and
	// raises broker_down when fewer answer. A checker not listed learns it:
	// the most brokers it has seen answer (so removing a broker for good
	// keeps the alert until the service restarts or this is set).
	ExpectedBrokers map[string]int
	// Recipient and Channel address the alert notifications; defaults
	// "ops" and eventmodels.ChannelLog.
	Recipient string
	Channel   eventmodels.Channel
	// UserID is the user_id of the events the service publishes; default
	// "system-health".
	UserID string
	// MaxPending bounds the alert notifications kept for a retry after a
	// failed publish; beyond it the oldest are dropped (and counted).
	// Default 1000.
	MaxPending int
	// StaleAfter makes /readyz answer 503 when the last round was judged
	// longer ago than this (Run has stopped or its rounds hang); default
	// 4 × Interval (a round may take up to 2 × CheckTimeout).
	StaleAfter time.Duration
	// Clock reads the time for events, alerts and windows; default
	// time.Now.
	Clock func() time.Time
	// Logger receives alerts raised and cleared and publish failures; nil
	// is silent.
	Logger *slog.Logger
}

// Thresholds are the alert lines. A condition holds when the measured
// value is above its line.
type Thresholds struct {
	// Lag is the most messages a consumer group may be behind on one topic
	// (summed over its partitions, or the ready messages of its queue);
	// default 1000.
	Lag int64
	// ErrorRate is the largest share of handler attempts that may fail
	// over Window, per service; default 0.01 (1 %).
	ErrorRate float64
	// P99 is the largest 99th percentile of handler time over Window, per
	// service; default 500ms.
	P99 time.Duration
	// Window is the span ErrorRate and P99 are measured over; default 1m.
	Window time.Duration
	// MinSamples is the fewest handler attempts in Window for ErrorRate and
	// P99 to be judged; below it a service counts as quiet (its alerts can
	// clear, none can start). Default 100.
	MinSamples int64
	// Stuck is the longest a subscription may hold one message (handed
	// out, not yet acknowledged) before AlertConsumerStuck; default 1m.
	// Keep it above the longest a handler may take with its retries.
	Stuck time.Duration
	// Imbalance is the most partition leaders one Kafka broker may hold,
	// as a multiple of its fair share (partitions / brokers); default 2.
	Imbalance float64
	// DiskUsage is the fullest a Kafka log volume may be, in percent;
	// default 80.
	DiskUsage float64
}

// Hysteresis keeps alerts from flapping. Two mechanisms act together:
//
//   - a band, for the measured conditions (lag, error rate, P99): an alert
//     starts when the value goes above its threshold and clears only once
//     the value is below ClearRatio × threshold; a value inside the band
//     changes nothing;
//   - a count: an alert starts after FireAfter consecutive rounds with the
//     condition above its threshold and clears after ClearAfter
//     consecutive rounds below the clear line (for broker and check
//     conditions, rounds in which the condition is false).
//
// With the defaults an alert starts at once and clears after two good
// rounds (10s at the default interval).
type Hysteresis struct {
	// ClearRatio is the clear line as a fraction of the threshold, in
	// (0, 1]; default 0.8.
	ClearRatio float64
	// FireAfter is the consecutive bad rounds before an alert starts;
	// default 1.
	FireAfter int
	// ClearAfter is the consecutive good rounds before an alert clears;
	// default 2.
	ClearAfter int
}

// Validate reports every problem of c in one error (nil if none).
func (c Config) Validate() error {
	var errs []error
	if len(c.Checkers) == 0 && c.Signals == nil {
		errs = append(errs, errors.New("Checkers or Signals: nothing to watch"))
	}
	for name, hc := range c.Checkers {
		if name == "" {
			errs = append(errs, errors.New("Checkers: empty name"))
		}
		if hc == nil {
			errs = append(errs, fmt.Errorf("Checkers[%q]: nil checker", name))
		}
	}
	for name, n := range c.ExpectedBrokers {
		if n < 0 {
			errs = append(errs, fmt.Errorf("ExpectedBrokers[%q]: %d is negative", name, n))
		}
	}
	neg := func(field string, v float64) {
		if v < 0 {
			errs = append(errs, fmt.Errorf("%s: %v is negative", field, v))
		}
	}
	neg("Interval", float64(c.Interval))
	neg("CheckTimeout", float64(c.CheckTimeout))
	neg("StaleAfter", float64(c.StaleAfter))
	neg("MaxPending", float64(c.MaxPending))
	neg("Thresholds.Lag", float64(c.Thresholds.Lag))
	neg("Thresholds.ErrorRate", c.Thresholds.ErrorRate)
	neg("Thresholds.P99", float64(c.Thresholds.P99))
	neg("Thresholds.Window", float64(c.Thresholds.Window))
	neg("Thresholds.MinSamples", float64(c.Thresholds.MinSamples))
	neg("Thresholds.Stuck", float64(c.Thresholds.Stuck))
	neg("Thresholds.Imbalance", c.Thresholds.Imbalance)
	neg("Thresholds.DiskUsage", c.Thresholds.DiskUsage)
	if c.Thresholds.DiskUsage > 100 {
		errs = append(errs, fmt.Errorf("Thresholds.DiskUsage: %v is above 100", c.Thresholds.DiskUsage))
	}
	neg("Hysteresis.FireAfter", float64(c.Hysteresis.FireAfter))
	neg("Hysteresis.ClearAfter", float64(c.Hysteresis.ClearAfter))
	if c.Thresholds.ErrorRate > 1 {
		errs = append(errs, fmt.Errorf("Thresholds.ErrorRate: %v is above 1", c.Thresholds.ErrorRate))
	}
	if r := c.Hysteresis.ClearRatio; r < 0 || r > 1 {
		errs = append(errs, fmt.Errorf("Hysteresis.ClearRatio: %v is outside (0, 1]", r))
	}
	if c.Channel != "" && !c.Channel.Valid() {
		errs = append(errs, fmt.Errorf("Channel: unknown channel %q", c.Channel))
	}
	// Recipient and UserID end up in events: check them by eventmodels' rules.
	d := c.withDefaults()
	sample := eventmodels.NewNotification(d.UserID, d.Recipient, eventmodels.ChannelLog, eventmodels.SeverityInfo, "probe", "")
	if err := sample.Validate(); err != nil {
		errs = append(errs, fmt.Errorf("Recipient or UserID: %w", err))
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrInvalidConfig, errors.Join(errs...))
}

// withDefaults returns c with zero fields replaced by their defaults and
// the maps copied.
func (c Config) withDefaults() Config {
	checkers := make(map[string]broker.HealthChecker, len(c.Checkers))
	for k, v := range c.Checkers {
		checkers[k] = v
	}
	c.Checkers = checkers
	expected := make(map[string]int, len(c.ExpectedBrokers))
	for k, v := range c.ExpectedBrokers {
		expected[k] = v
	}
	c.ExpectedBrokers = expected
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = c.Interval
	}
	c.CheckTimeout = max(c.CheckTimeout, minCheckTimeout)
	if c.StaleAfter == 0 {
		c.StaleAfter = defaultStaleFactor * c.Interval
	}
	t := &c.Thresholds
	if t.Lag == 0 {
		t.Lag = DefaultLag
	}
	if t.ErrorRate == 0 {
		t.ErrorRate = DefaultErrorRate
	}
	if t.P99 == 0 {
		t.P99 = DefaultP99
	}
	if t.Window == 0 {
		t.Window = DefaultWindow
	}
	if t.MinSamples == 0 {
		t.MinSamples = DefaultMinSamples
	}
	if t.Stuck == 0 {
		t.Stuck = DefaultStuck
	}
	if t.Imbalance == 0 {
		t.Imbalance = DefaultImbalance
	}
	if t.DiskUsage == 0 {
		t.DiskUsage = DefaultDiskUsage
	}
	h := &c.Hysteresis
	if h.ClearRatio == 0 {
		h.ClearRatio = DefaultClearRatio
	}
	if h.FireAfter == 0 {
		h.FireAfter = DefaultFireAfter
	}
	if h.ClearAfter == 0 {
		h.ClearAfter = DefaultClearAfter
	}
	if c.Recipient == "" {
		c.Recipient = DefaultRecipient
	}
	if c.Channel == "" {
		c.Channel = eventmodels.ChannelLog
	}
	if c.UserID == "" {
		c.UserID = DefaultUserID
	}
	if c.MaxPending == 0 {
		c.MaxPending = DefaultMaxPending
	}
	if c.Clock == nil {
		c.Clock = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}
