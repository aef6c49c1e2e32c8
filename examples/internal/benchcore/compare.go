package benchcore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"
)

// The scenarios of a Comparison.
const (
	// ScenarioPublish: the publishers as fast as they go for the run's
	// duration, consumers running (Run at rate max): publish events/s,
	// client (and embedded broker) CPU at full load.
	ScenarioPublish = "publish"
	// ScenarioLatency: a fixed offered rate (Comparison.LatencyRate) for the
	// run's duration: publish→handle P50 and P99.
	ScenarioLatency = "latency"
	// ScenarioDrain (RunDrain): Comparison.DrainCount events published with
	// nobody consuming, then one member drains them: drain events/s, and
	// the client CPU per published event with nothing else running.
	// (ScenarioDrain is also Result.Scenario of such runs.)
)

// Scenarios lists the scenarios in the order a Comparison runs them.
var Scenarios = []string{ScenarioPublish, ScenarioLatency, ScenarioDrain}

// DefaultDrainCount is the backlog of the drain scenario per backend:
// large enough for the drain to last well over the clock's and the
// scheduler's granularity, small enough to publish in seconds.
var DefaultDrainCount = map[string]int64{BackendMemory: 200_000, BackendKafka: 200_000, BackendRabbitMQ: 50_000}

// DefaultDrainTimeout is how long the drain scenario waits for its
// backlog to be consumed (the Run's Drain when longer): a backlog drains
// in seconds on a quiet machine, in minutes on a loaded one, and an event
// still missing at the end counts as lost.
const DefaultDrainTimeout = 5 * time.Minute

// Comparison runs the arms (modes) side by side over backends and
// scenarios: for each backend, Repeat rounds; in each round every scenario
// runs every mode once, the order of the modes rotated by one per round
// (sdk, watermill, raw; then watermill, raw, sdk; …), each run on a fresh
// topic (and, for the embedded Kafka, a fresh cluster). Cells keep every
// run and the median.
type Comparison struct {
	// Session is the template of every run: Options (Backend and Mode are
	// set per run; Brokers and URLs must suit every backend), Run (its
	// Duration bounds the publish and latency scenarios), KafkaExe, Log.
	Session Session
	// Backends, Scenarios and Modes to run; defaults all three of each.
	Backends, Scenarios, Modes []string
	// Repeat is the number of rounds (default 3).
	Repeat int
	// LatencyRate is the offered rate of the latency scenario (default
	// 1,000 events/s).
	LatencyRate float64
	// DrainCount is the backlog of the drain scenario per backend (default
	// DefaultDrainCount).
	DrainCount map[string]int64
	// DrainSubscribers is the number of members draining (default 1: a
	// second Kafka member joining mid-drain would measure a rebalance).
	DrainSubscribers int
	// Progress receives a line per run (nil: none).
	Progress io.Writer
}

// Cell is one backend, scenario and mode of a comparison.
type Cell struct {
	Backend  string   `json:"backend"`
	Scenario string   `json:"scenario"`
	Mode     string   `json:"mode"`
	Runs     []Result `json:"runs"`
	// Median is Median(Runs): medians of the figures, the worst run's loss
	// counts.
	Median Result `json:"median"`
}

// ComparisonReport is what a Comparison measured.
type ComparisonReport struct {
	Command string    `json:"command"`
	Machine Machine   `json:"machine"`
	Started time.Time `json:"started"`
	// Seconds is the wall time of the whole comparison.
	Seconds     float64          `json:"seconds"`
	Repeat      int              `json:"repeat"`
	Publishers  int              `json:"publishers"`
	Duration    float64          `json:"duration_seconds"`
	LatencyRate float64          `json:"latency_rate"`
	DrainCount  map[string]int64 `json:"drain_count"`
	Cells       []*Cell          `json:"cells"`
	// Errors are the runs that failed (their figures are missing).
	Errors []string `json:"errors,omitempty"`
}

// ErrComparison is matched by Comparison.Run's error for a comparison it
// cannot run.
var ErrComparison = errors.New("benchcore: invalid comparison")

func (c Comparison) withDefaults() Comparison {
	if len(c.Backends) == 0 {
		c.Backends = []string{BackendKafka, BackendRabbitMQ, BackendMemory}
	}
	if len(c.Scenarios) == 0 {
		c.Scenarios = Scenarios
	}
	if len(c.Modes) == 0 {
		c.Modes = Modes
	}
	if c.Repeat == 0 {
		c.Repeat = 3
	}
	if c.LatencyRate == 0 {
		c.LatencyRate = 1000
	}
	counts := map[string]int64{}
	for b, n := range DefaultDrainCount {
		counts[b] = n
	}
	for b, n := range c.DrainCount {
		if n > 0 {
			counts[b] = n
		}
	}
	c.DrainCount = counts
	if c.DrainSubscribers == 0 {
		c.DrainSubscribers = 1
	}
	return c
}

// Validate reports what is wrong with c (after defaults).
func (c Comparison) Validate() error {
	c = c.withDefaults()
	var errs []error
	for _, s := range c.Scenarios {
		if !slices.Contains(Scenarios, s) {
			errs = append(errs, fmt.Errorf("scenario %q: want %v", s, Scenarios))
		}
	}
	if (slices.Contains(c.Scenarios, ScenarioPublish) || slices.Contains(c.Scenarios, ScenarioLatency)) && c.Session.Run.Duration <= 0 {
		errs = append(errs, errors.New("the publish and latency scenarios need a duration"))
	}
	if c.Repeat < 1 || c.LatencyRate < 0 || c.DrainSubscribers < 1 {
		errs = append(errs, errors.New("repeat and drain subscribers must be at least 1, the latency rate positive"))
	}
	for _, b := range c.Backends {
		o := c.Session.Options
		o.Backend, o.Topic = b, "probe"
		if b == BackendKafka && len(o.Brokers) == 0 {
			o.Brokers = []string{"embedded"}
		}
		for _, m := range c.Modes {
			o.Mode = m
			if err := o.Validate(); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrComparison, errors.Join(errs...))
	}
	return nil
}

// Rotate returns modes rotated left by round: the order of the modes in
// that round.
func Rotate(modes []string, round int) []string {
	out := make([]string, len(modes))
	for i := range modes {
		out[i] = modes[(i+round)%len(modes)]
	}
	return out
}

// Run runs the comparison. A run that fails is reported in the report's
// Errors (and the returned error) and the comparison goes on; ctx ending
// stops it with what was measured so far.
func (c Comparison) Run(ctx context.Context) (*ComparisonReport, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	c = c.withDefaults()
	rep := &ComparisonReport{Machine: DescribeMachine(), Started: time.Now(), Repeat: c.Repeat,
		Publishers: c.Session.Run.withDefaults().Publishers, Duration: c.Session.Run.Duration.Seconds(),
		LatencyRate: c.LatencyRate, DrainCount: map[string]int64{}}
	cells := map[[3]string]*Cell{}
	cell := func(b, s, m string) *Cell {
		k := [3]string{b, s, m}
		if cells[k] == nil {
			cells[k] = &Cell{Backend: b, Scenario: s, Mode: m}
			rep.Cells = append(rep.Cells, cells[k])
		}
		return cells[k]
	}
	var errs []error
	total := len(c.Backends) * c.Repeat * len(c.Scenarios) * len(c.Modes)
	done := 0
	for _, b := range c.Backends {
		if slices.Contains(c.Scenarios, ScenarioDrain) {
			rep.DrainCount[b] = c.DrainCount[b]
		}
		for round := range c.Repeat {
			for _, sc := range c.Scenarios {
				for _, mode := range Rotate(c.Modes, round) {
					if ctx.Err() != nil {
						return c.finish(rep, errs), errors.Join(append(errs, ctx.Err())...)
					}
					s := c.Session
					s.Options.Backend = b
					var out Outcome
					var err error
					switch sc {
					case ScenarioPublish:
						out, err = s.RunOnce(ctx, mode, 0)
					case ScenarioLatency:
						out, err = s.RunOnce(ctx, mode, c.LatencyRate)
					case ScenarioDrain:
						s.Options.Subscribers = c.DrainSubscribers
						s.Run.Count, s.Run.Duration, s.Run.Warmup = c.DrainCount[b], 0, 0
						s.Run.Drain = max(s.Run.Drain, DefaultDrainTimeout)
						out, err = s.RunDrainOnce(ctx, mode, 0)
					}
					done++
					if err == nil && out.PublishErr != nil {
						err = fmt.Errorf("publish failed (%d events): %w", out.Result.Failed, out.PublishErr)
					}
					if err != nil {
						err = fmt.Errorf("%s/%s/%s round %d: %w", b, mode, sc, round+1, err)
						errs = append(errs, err)
						rep.Errors = append(rep.Errors, err.Error())
					}
					if !out.Result.Started.IsZero() {
						out.Result.Scenario = sc
						cl := cell(b, sc, mode)
						cl.Runs = append(cl.Runs, out.Result)
					}
					if c.Progress != nil {
						r := out.Result
						fmt.Fprintf(c.Progress, "[%d/%d] %s/%s/%s round %d: publish %s/s, consume %s/s, p50 %.3f ms, p99 %.3f ms, lost %d, dup %d%s\n",
							done, total, b, sc, mode, round+1, num(r.PublishRate), num(r.Throughput), r.EndToEnd.P50, r.EndToEnd.P99,
							r.Lost, r.Duplicates, errSuffix(err))
					}
				}
			}
		}
	}
	return c.finish(rep, errs), errors.Join(errs...)
}

func errSuffix(err error) string {
	if err == nil {
		return ""
	}
	return " — ERROR " + err.Error()
}

func (c Comparison) finish(rep *ComparisonReport, _ []error) *ComparisonReport {
	for _, cl := range rep.Cells {
		cl.Median = Median(cl.Runs)
	}
	rep.Seconds = time.Since(rep.Started).Seconds()
	return rep
}

// Lost returns the events lost over every run of the report.
func (r *ComparisonReport) Lost() int64 {
	var n int64
	for _, c := range r.Cells {
		for _, x := range c.Runs {
			n += x.Lost
		}
	}
	return n
}

// Cell returns the cell of backend, scenario and mode, or nil.
func (r *ComparisonReport) Cell(backend, scenario, mode string) *Cell {
	for _, c := range r.Cells {
		if c.Backend == backend && c.Scenario == scenario && c.Mode == mode {
			return c
		}
	}
	return nil
}
