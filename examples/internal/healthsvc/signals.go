package healthsvc

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

// SignalSource reports what the services' consumers did recently. The
// service calls Signals once per round with Thresholds.Window.
//
// Implementations must be safe for concurrent use and must not block: they
// are read while handlers keep running. Recorder is the implementation fed
// by the consumption pipeline's hooks; tests and other processes can supply
// their own (for instance one that reads a metrics backend).
type SignalSource interface {
	// Signals returns one entry per service seen, for the last window
	// (implementations may round it to their own resolution).
	Signals(window time.Duration) []ServiceSignals
}

// ServiceSignals is what one service's handlers did over a window.
type ServiceSignals struct {
	// Service names the service (for Recorder: the subscription group).
	Service string `json:"service"`
	// Handled and Failed count handler attempts in the window that
	// returned nil and an error (a retried message counts once per
	// attempt).
	Handled int64 `json:"handled"`
	Failed  int64 `json:"failed"`
	// DeadLettered and Discarded count failed messages in the window that
	// went to the dead-letter topic, or were acknowledged without one.
	DeadLettered int64 `json:"dead_lettered"`
	Discarded    int64 `json:"discarded"`
	// DeadLetteredTotal counts dead letters since the source started.
	DeadLetteredTotal int64 `json:"dead_lettered_total"`
	// P50 and P99 are percentiles of handler attempt durations in the
	// window; 0 without attempts.
	P50 time.Duration `json:"p50"`
	P99 time.Duration `json:"p99"`
	// Dropped counts events the service dropped on purpose in the window
	// (a best-effort path that could not keep up or reach its broker;
	// see Recorder.RecordDropped).
	Dropped int64 `json:"dropped,omitempty"`
	// InFlight is how many messages the service's subscriptions hold now
	// (handed out, not acknowledged), and OldestInFlight how long the
	// oldest has been held; filled by WithInFlight.
	InFlight       int64         `json:"in_flight,omitempty"`
	OldestInFlight time.Duration `json:"oldest_in_flight,omitempty"`
}

// Attempts is Handled + Failed.
func (s ServiceSignals) Attempts() int64 { return s.Handled + s.Failed }

// ErrorRate is Failed / Attempts, 0 without attempts.
func (s ServiceSignals) ErrorRate() float64 {
	if n := s.Attempts(); n > 0 {
		return float64(s.Failed) / float64(n)
	}
	return 0
}

// WithInFlight returns a SignalSource that adds to src's signals what the
// subscriptions of checkers hold in flight (broker.HealthReport.InFlight),
// per service (the subscription group), so that a health service in
// another process sees a stuck consumer. A group src has not seen gets an
// entry of its own. Health calls are bounded by timeout; a checker that
// fails adds nothing.
func WithInFlight(src SignalSource, checkers map[string]broker.HealthChecker, timeout time.Duration) SignalSource {
	return inFlightSource{src: src, checkers: checkers, timeout: timeout}
}

type inFlightSource struct {
	src      SignalSource
	checkers map[string]broker.HealthChecker
	timeout  time.Duration
}

func (s inFlightSource) Signals(window time.Duration) []ServiceSignals {
	out := s.src.Signals(window)
	idx := make(map[string]int, len(out))
	for i, sig := range out {
		idx[sig.Service] = i
	}
	for _, hc := range s.checkers {
		ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
		rep, err := hc.Health(ctx)
		cancel()
		if err != nil || rep == nil {
			continue
		}
		for _, f := range rep.InFlight {
			i, ok := idx[f.Group]
			if !ok {
				i = len(out)
				idx[f.Group] = i
				out = append(out, ServiceSignals{Service: f.Group})
			}
			out[i].InFlight += int64(f.Messages)
			out[i].OldestInFlight = max(out[i].OldestInFlight, f.OldestAge)
		}
	}
	slices.SortFunc(out, func(a, b ServiceSignals) int { return cmp.Compare(a.Service, b.Service) })
	return out
}
