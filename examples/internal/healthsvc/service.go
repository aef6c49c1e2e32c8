package healthsvc

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
)

// Service watches the platform's health. Check runs one round; Run runs
// rounds every Interval. Its methods are safe for concurrent use; rounds
// are serialised.
type Service struct {
	cfg Config
	log *slog.Logger

	round    sync.Mutex // serialises Check
	alerts   *tracker
	expected map[string]int // learned broker counts
	outbox   []*eventmodels.Notification

	mu      sync.Mutex // guards last, lastAt, stats and history
	last    *Report
	lastAt  time.Time // when last was judged
	stats   Stats
	history []Transition // the latest DefaultHistory, oldest first
}

// Transition is an alert that started or cleared, as History lists it.
type Transition struct {
	// Event is "raised" or "cleared".
	Event string `json:"event"`
	Alert Alert  `json:"alert"`
}

// Stats counts what the service did since New.
type Stats struct {
	// Rounds counts completed rounds (Check calls that were not cancelled).
	Rounds int64 `json:"rounds"`
	// HealthEventsPublished counts system.health events published.
	HealthEventsPublished int64 `json:"health_events_published"`
	// AlertsRaised and AlertsCleared count alert starts and clears.
	AlertsRaised  int64 `json:"alerts_raised"`
	AlertsCleared int64 `json:"alerts_cleared"`
	// NotificationsPublished counts alert notifications published;
	// NotificationsPending are waiting for a retry after a failed publish;
	// NotificationsDropped were dropped beyond Config.MaxPending.
	NotificationsPublished int64 `json:"notifications_published"`
	NotificationsPending   int   `json:"notifications_pending"`
	NotificationsDropped   int64 `json:"notifications_dropped"`
	// PublishErrors counts failed Publish calls.
	PublishErrors int64 `json:"publish_errors"`
	// HealthEventsUnconfirmed counts system.health events whose publish
	// ran out of time before the broker confirmed them: they were not
	// sent again and may or may not have arrived (at-least-once).
	HealthEventsUnconfirmed int64 `json:"health_events_unconfirmed"`
}

// Report is the outcome of one round.
type Report struct {
	// Time is when the round started (Config.Clock).
	Time time.Time `json:"time"`
	// Status is the worst status of every backend and service.
	Status broker.HealthStatus `json:"status"`
	// Ready is false when a backend is unreachable; NotReady says why.
	Ready    bool     `json:"ready"`
	NotReady []string `json:"not_ready,omitempty"`
	// Backends are the checkers' reports, sorted by name.
	Backends []BackendReport `json:"backends"`
	// Services are the signals of the services, sorted by name.
	Services []ServiceSignals `json:"services"`
	// Sources are the signals endpoints and whether they answer (when
	// Config.Signals is a SourceReporter such as Remote).
	Sources []SourceState `json:"sources,omitempty"`
	// Raised and Cleared are the alerts that started and cleared in this
	// round; Active are all alerts active after it. Each sorted by ID.
	Raised  []Alert `json:"raised,omitempty"`
	Cleared []Alert `json:"cleared,omitempty"`
	Active  []Alert `json:"active"`
}

// New validates cfg and returns a service.
func New(cfg Config) (*Service, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	return &Service{
		cfg: cfg, log: cfg.Logger,
		alerts: newTracker(cfg.Hysteresis), expected: map[string]int{},
	}, nil
}

// Run runs a round at once and then every Interval until ctx ends, and
// returns nil then. Rounds do not overlap: a slow round delays the next.
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		if _, err := s.Check(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("healthsvc: round failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Check runs one round: it probes every checker (each bounded by
// CheckTimeout), reads the signals, starts and clears alerts, publishes the
// alert notifications (and any left from failed publishes before) and a
// system.health event per component, and returns the round's report. It
// returns ctx's error, and changes nothing, if ctx ends before the probes
// are judged: a cancelled round must not look like an outage. Publish
// failures do not fail the round; they are counted in Stats.
func (s *Service) Check(ctx context.Context) (Report, error) {
	s.round.Lock()
	defer s.round.Unlock()
	if err := ctx.Err(); err != nil {
		return Report{}, fmt.Errorf("healthsvc: round cancelled: %w", err)
	}
	now := s.cfg.Clock()
	probes := probe(ctx, s.cfg.Checkers, s.cfg.CheckTimeout)
	var signals []ServiceSignals
	var sources []SourceState
	if s.cfg.Signals != nil {
		signals = s.cfg.Signals.Signals(s.cfg.Thresholds.Window)
		if sr, ok := s.cfg.Signals.(SourceReporter); ok {
			sources = sr.Sources()
		}
	}
	if err := ctx.Err(); err != nil {
		return Report{}, fmt.Errorf("healthsvc: round cancelled: %w", err)
	}

	rep := Report{Time: now, Ready: true, Services: signals, Sources: sources}
	var obs []observation
	// The services of an endpoint that does not answer are unknown: their
	// alerts are neither judged nor cleared until it answers again.
	unknown := map[string]bool{}
	for _, src := range sources {
		a := Alert{Kind: AlertSourceUnreachable, Subject: src.URL, Severity: eventmodels.SeverityError, Value: float64(src.Failures)}
		if src.Up {
			a.Message = "signals endpoint " + src.URL + " answers"
			obs = append(obs, observation{alert: a, level: levelClear})
			continue
		}
		a.Message = fmt.Sprintf("signals endpoint %s does not answer (%d failed fetches; last error: %s); the alerts of %v stay open until it does",
			src.URL, src.Failures, src.Err, src.Services)
		obs = append(obs, observation{alert: a, level: levelFire})
		for _, svc := range src.Services {
			unknown[svc] = true
		}
	}
	down := map[string]bool{}
	names := make([]string, 0, len(probes))
	for name := range probes {
		names = append(names, name)
	}
	slices.Sort(names)
	statuses := []broker.HealthStatus{broker.HealthHealthy}
	for _, name := range names {
		pr := probes[name]
		expected := s.cfg.ExpectedBrokers[name]
		if expected == 0 {
			expected = s.expected[name]
		}
		br, o := s.backendObservations(name, pr, expected)
		s.learnBrokers(name, pr)
		obs = append(obs, o...)
		rep.Backends = append(rep.Backends, br)
		statuses = append(statuses, br.Status)
		down[name] = br.Down
		if br.Down {
			rep.Ready = false
			for _, p := range br.Problems {
				rep.NotReady = append(rep.NotReady, name+": "+p)
			}
		}
	}
	if len(unknown) > 0 {
		statuses = append(statuses, broker.HealthDegraded)
	}
	for _, sig := range signals {
		if unknown[sig.Service] {
			continue // partial figures (another endpoint's share): hold
		}
		o, st := s.serviceObservations(sig)
		obs = append(obs, o...)
		statuses = append(statuses, st)
	}
	rep.Status = broker.Worst(statuses...)

	// An alert no longer reported clears only if its source answered: a
	// backend that is down says nothing about its groups or checks.
	absentClears := func(a Alert) bool {
		if a.Backend != "" {
			isDown, probed := down[a.Backend]
			return probed && !isDown
		}
		return s.cfg.Signals != nil && !unknown[a.Subject] && a.Kind != AlertSourceUnreachable
	}
	rep.Raised, rep.Cleared = s.alerts.round(now, obs, absentClears)
	rep.Active = s.alerts.active()
	for _, a := range rep.Raised {
		s.log.Warn("healthsvc: alert", "kind", a.Kind, "backend", a.Backend, "subject", a.Subject, "severity", a.Severity, "message", a.Message)
	}
	for _, a := range rep.Cleared {
		s.log.Info("healthsvc: alert cleared", "kind", a.Kind, "backend", a.Backend, "subject", a.Subject, "message", a.Message)
	}

	s.mu.Lock()
	s.stats.Rounds++
	s.stats.AlertsRaised += int64(len(rep.Raised))
	s.stats.AlertsCleared += int64(len(rep.Cleared))
	for _, a := range rep.Raised {
		s.history = append(s.history, Transition{Event: "raised", Alert: a})
	}
	for _, a := range rep.Cleared {
		s.history = append(s.history, Transition{Event: "cleared", Alert: a})
	}
	if over := len(s.history) - DefaultHistory; over > 0 {
		s.history = slices.Delete(s.history, 0, over)
	}
	kept := rep.clone() // the caller may change what Check returns
	s.last, s.lastAt = &kept, s.cfg.Clock()
	s.mu.Unlock()

	s.publish(ctx, &rep)
	return rep, nil
}

// learnBrokers remembers the most brokers a Kafka checker has seen answer.
func (s *Service) learnBrokers(name string, pr probeResult) {
	if pr.err != nil {
		return
	}
	for _, c := range pr.rep.Checks {
		if c.Name == checkKafkaBrokers && c.Status != broker.HealthUnhealthy {
			s.expected[name] = max(s.expected[name], int(c.Value))
		}
	}
}

// serviceObservations judges one service's signals and returns its
// observations and status.
func (s *Service) serviceObservations(sig ServiceSignals) ([]observation, broker.HealthStatus) {
	th, ratio := s.cfg.Thresholds, s.cfg.Hysteresis.ClearRatio
	rate, p99 := sig.ErrorRate(), float64(sig.P99)/float64(time.Millisecond)
	judged := sig.Attempts() >= th.MinSamples
	if !judged {
		rate, p99 = 0, 0 // quiet: can clear, cannot fire
	}
	win := th.Window
	rateAlert := Alert{Kind: AlertErrorRate, Subject: sig.Service, Severity: eventmodels.SeverityError,
		Value: rate, Threshold: th.ErrorRate,
		Message: fmt.Sprintf("service %s: %.2f %% of %d handler attempts failed over %v (threshold %.2f %%)",
			sig.Service, 100*sig.ErrorRate(), sig.Attempts(), win, 100*th.ErrorRate)}
	p99Line := float64(th.P99) / float64(time.Millisecond)
	latAlert := Alert{Kind: AlertLatency, Subject: sig.Service, Severity: eventmodels.SeverityWarning,
		Value: p99, Threshold: p99Line,
		Message: fmt.Sprintf("service %s: P99 handler time %v over %v (threshold %v; %d attempts)",
			sig.Service, sig.P99, win, th.P99, sig.Attempts())}
	obs := []observation{
		{alert: rateAlert, level: measured(rate, th.ErrorRate, ratio)},
		{alert: latAlert, level: measured(p99, p99Line, ratio)},
	}
	drop := Alert{Kind: AlertEventsDropped, Subject: sig.Service, Severity: eventmodels.SeverityWarning, Value: float64(sig.Dropped),
		Message: fmt.Sprintf("service %s dropped %d events over %v", sig.Service, sig.Dropped, win)}
	if sig.Dropped > 0 {
		obs = append(obs, observation{alert: drop, level: levelFire})
	} else {
		obs = append(obs, observation{alert: drop, level: levelClear})
	}
	stuck, stuckLevel := stuckObservation(sig.Service, int(sig.InFlight), sig.OldestInFlight, th.Stuck, ratio)
	if sig.InFlight > 0 || sig.OldestInFlight > 0 {
		obs = append(obs, observation{alert: stuck, level: stuckLevel})
	}
	st := broker.HealthHealthy
	if rate > th.ErrorRate || p99 > p99Line || sig.Dropped > 0 || stuckLevel == levelFire && sig.InFlight > 0 {
		st = broker.HealthDegraded
	}
	return obs, st
}

// History returns the latest alert transitions (at most DefaultHistory),
// oldest first: every alert raised and cleared, with its figures then.
func (s *Service) History() []Transition {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.history)
}

// Alerts returns the active alerts, sorted by ID.
func (s *Service) Alerts() []Alert {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return nil
	}
	return slices.Clone(s.last.Active)
}

// Last returns (a copy of) the report of the latest round, and false
// before the first.
func (s *Service) Last() (Report, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		return Report{}, false
	}
	return s.last.clone(), true
}

// clone returns a copy of r that shares no slice with it.
func (r Report) clone() Report {
	r.NotReady = slices.Clone(r.NotReady)
	r.Sources = slices.Clone(r.Sources)
	r.Services = slices.Clone(r.Services)
	r.Raised, r.Cleared, r.Active = slices.Clone(r.Raised), slices.Clone(r.Cleared), slices.Clone(r.Active)
	r.Backends = slices.Clone(r.Backends)
	for i := range r.Backends {
		b := &r.Backends[i]
		b.Problems, b.Checks, b.Lag = slices.Clone(b.Problems), slices.Clone(b.Checks), slices.Clone(b.Lag)
	}
	return r
}

// Stats returns the counters.
func (s *Service) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}
