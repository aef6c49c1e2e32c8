// Package system runs the whole reference platform in one process — the job
// orchestrator and the consumer services on the two event paths of package
// platform — submits a stream of jobs, and checks the outcome: every event
// published was consumed by every service, each job's events in order, the
// audit chain intact. It is the engine of examples/demo and of the
// end-to-end tests.
package system

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/auditsvc"
	"github.com/cosmic-horizons/events/examples/internal/dashboard"
	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
	"github.com/cosmic-horizons/events/examples/internal/metricsvc"
	"github.com/cosmic-horizons/events/examples/internal/notifysvc"
	"github.com/cosmic-horizons/events/examples/internal/opsview"
	"github.com/cosmic-horizons/events/examples/internal/orchestrator"
	"github.com/cosmic-horizons/events/examples/internal/platform"
)

// Config shapes a run.
type Config struct {
	// Platform carries the two event paths. Required.
	Platform *platform.Platform
	// Jobs to submit; Rate per second (0: all at once).
	Jobs int
	Rate float64
	// Sim shapes the simulated executor (seed, failure ratio, speed).
	Sim orchestrator.SimConfig
	// AuditDir is the audit trail's directory. Required.
	AuditDir string
	// HealthInterval is the health service's round interval; default 1s.
	HealthInterval time.Duration
	// Settle bounds the wait, after the last job finished, for every
	// consumer to catch up; default 60s.
	Settle time.Duration
	// Progress, if set, receives a live status line a few times a second.
	Progress io.Writer
	// ProgressLines makes the status written to Progress plain lines, one
	// every ProgressEvery (default 2s), with no carriage return or
	// terminal escape: for a Progress that is a log file or a pipe, not a
	// terminal.
	ProgressLines bool
	ProgressEvery time.Duration
	// Step, if set, is told what Start is starting as it starts it.
	Step func(what string)
	// Logger; default discard.
	Logger *slog.Logger
}

func (c Config) step(what string) {
	if c.Step != nil {
		c.Step(what)
	}
}

// Services are the running services of a System.
type Services struct {
	Orchestrator *orchestrator.Service
	Metrics      *metricsvc.Service
	Audit        *auditsvc.Service
	Health       *healthsvc.Service
	Notify       *notifysvc.Service
	Dashboard    *dashboard.Dashboard
	Probe        *Probe
	// Ops is the operator view: this process's publishing and consumption
	// with the health service's figures, sampled every second.
	Ops *opsview.View
}

// System is a running platform.
type System struct {
	cfg       Config
	Services  Services
	consumers []broker.Consumer
	closers   []func() error // after the consumers

	healthMu   sync.Mutex
	healthStop func() // stops the running health loop and waits for it; nil when none runs
	serving    int    // Serve calls in progress
	counting   bool   // Run is taking its final counts: no health rounds
	ran        bool   // a Run has finished
}

// Start starts every service on cfg.Platform.
func Start(ctx context.Context, cfg Config) (_ *System, err error) {
	if cfg.Platform == nil {
		return nil, errors.New("system: Config.Platform is required")
	}
	if cfg.AuditDir == "" {
		return nil, errors.New("system: Config.AuditDir is required")
	}
	if cfg.HealthInterval <= 0 {
		cfg.HealthInterval = time.Second
	}
	if cfg.Settle <= 0 {
		cfg.Settle = 60 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	p := cfg.Platform
	s := &System{cfg: cfg}
	defer func() {
		if err != nil {
			s.Stop(context.Background())
		}
	}()
	cfg.step("starting the job orchestrator")
	if s.Services.Orchestrator, err = orchestrator.New(orchestrator.Config{
		Durable: p.Durable, Realtime: p.Realtime, Replayer: p.Replayer, Sim: cfg.Sim,
		Logger:         cfg.Logger.With("service", "orchestrator"),
		OnRealtimeDrop: func(eventmodels.Event, error) { p.Signals.RecordDropped("orchestrator", 1) },
	}); err != nil {
		return nil, err
	}
	if s.Services.Metrics, err = metricsvc.New(metricsvc.Config{Health: p.Health["kafka"]}); err != nil {
		return nil, err
	}
	cfg.step("starting the metrics service (joining consumer group metrics-service)")
	c, err := s.Services.Metrics.Subscribe(ctx, p.Durable, "metrics-service", 8)
	if err != nil {
		return nil, err
	}
	s.consumers = append(s.consumers, c)
	cfg.step("starting the compliance auditor (consumer group compliance-auditor, one subscription per topic)")
	if s.Services.Audit, err = auditsvc.New(auditsvc.Config{Dir: cfg.AuditDir, Bus: p.Durable, Logger: cfg.Logger.With("service", "audit")}); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Services.Audit.Close)
	cs, err := s.Services.Audit.Subscribe(ctx, p.DurableBackend, "compliance-auditor", 8)
	if err != nil {
		return nil, err
	}
	s.consumers = append(s.consumers, cs...)
	cfg.step("starting the live job dashboard (real-time path)")
	if s.Services.Dashboard, err = dashboard.New(dashboard.Config{
		JobsAPI: s.Services.Orchestrator.Handler(), Logger: cfg.Logger.With("service", "dashboard"),
	}); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Services.Dashboard.Close)
	if c, err = s.Services.Dashboard.Subscribe(ctx, p.Realtime); err != nil {
		return nil, err
	}
	s.consumers = append(s.consumers, c)
	cfg.step("starting the notification service (consumer group notification-service)")
	if s.Services.Notify, err = notifysvc.New(notifysvc.Config{
		Publisher: p.Durable, Logger: cfg.Logger.With("service", "notifications"),
		Channels: []notifysvc.Channel{
			notifysvc.NewLogChannel(cfg.Logger.With("service", "notifications")),
			notifysvc.NewBrowserChannel(s.Services.Dashboard),
		},
		OnDelivery: func(ch eventmodels.Channel, err error, dead bool) {
			p.Signals.RecordOutcome("notification-service/"+string(ch), err, dead)
		},
	}); err != nil {
		return nil, err
	}
	s.closers = append(s.closers, s.Services.Notify.Close)
	if c, err = s.Services.Notify.Subscribe(ctx, p.Durable, "notification-service", 8); err != nil {
		return nil, err
	}
	s.consumers = append(s.consumers, c)
	cfg.step("starting the order probe (consumer groups demo-probe, demo-live-probe)")
	s.Services.Probe = NewProbe()
	if c, err = s.Services.Probe.Subscribe(ctx, p.Durable, "demo-probe"); err != nil {
		return nil, err
	}
	s.consumers = append(s.consumers, c)
	live, err := s.Services.Probe.SubscribeRealtime(ctx, p.Realtime, "demo-live-probe")
	if err != nil {
		return nil, err
	}
	s.consumers = append(s.consumers, live)
	cfg.step("starting the system health service")
	if s.Services.Health, err = healthsvc.New(healthsvc.Config{
		Checkers: p.Health, Signals: p.Signals, Publisher: p.Durable, Interval: cfg.HealthInterval,
		Logger: cfg.Logger.With("service", "health"),
	}); err != nil {
		return nil, err
	}
	s.startHealth()
	if s.Services.Ops, err = opsview.New(opsview.Config{Collector: p.Ops, Health: s.Services.Health, Logger: cfg.Logger}); err != nil {
		return nil, err
	}
	octx, stopOps := context.WithCancel(context.Background())
	opsDone := make(chan struct{})
	go func() { defer close(opsDone); _ = s.Services.Ops.Run(octx) }()
	s.closers = append(s.closers, func() error { stopOps(); <-opsDone; return nil })
	cfg.step("replaying job-lifecycle into the orchestrator")
	if _, err := s.Services.Orchestrator.Restore(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// startHealth starts the health service's rounds, the first at once, every
// HealthInterval, unless they are running.
func (s *System) startHealth() {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	s.startHealthLocked()
}

func (s *System) startHealthLocked() {
	if s.healthStop != nil {
		return
	}
	hctx, hcancel := context.WithCancel(context.Background())
	hdone := make(chan struct{})
	go func() { defer close(hdone); _ = s.Services.Health.Run(hctx) }()
	s.healthStop = func() { hcancel(); <-hdone }
}

// stopHealth stops the health service's rounds, if they run, and waits for
// the round in progress.
func (s *System) stopHealth() {
	s.healthMu.Lock()
	stop := s.healthStop
	s.healthStop = nil
	s.healthMu.Unlock()
	if stop != nil {
		stop()
	}
}

// beginCounting stops the health rounds for Run's final counts.
func (s *System) beginCounting() {
	s.healthMu.Lock()
	s.counting = true
	s.healthMu.Unlock()
	s.stopHealth()
}

// endCounting ends Run's final counts: the health rounds start again if
// Serve is serving.
func (s *System) endCounting() {
	s.healthMu.Lock()
	defer s.healthMu.Unlock()
	s.counting, s.ran = false, true
	if s.serving > 0 {
		s.startHealthLocked()
	}
}

// Serve serves HTTPHandler on ln until ctx ends, then shuts the server
// down (requests in progress get up to 5s) and returns nil; it returns the
// server's error if serving fails. It closes ln.
//
// Serve may be called before Run, so the dashboard and every API can be
// watched while the jobs run, or after it. Run stops the health service's
// rounds to take its final counts; while Serve serves, they run again,
// every HealthInterval, as soon as Run has its counts, so /readyz and
// /report keep reporting the platform's state. Unless Run is taking its
// counts, a round completes before the first request is served.
func (s *System) Serve(ctx context.Context, ln net.Listener) error {
	s.healthMu.Lock()
	s.serving++
	counting := s.counting
	s.healthMu.Unlock()
	defer func() {
		s.healthMu.Lock()
		s.serving--
		stop := s.serving == 0 && s.ran && !s.counting
		s.healthMu.Unlock()
		if stop {
			s.stopHealth()
		}
	}()
	if !counting {
		if _, err := s.Services.Health.Check(ctx); err != nil {
			_ = ln.Close()
			if ctx.Err() != nil {
				return nil // ended before serving began
			}
			return fmt.Errorf("system: serve: %w", err)
		}
		s.healthMu.Lock()
		if !s.counting {
			s.startHealthLocked()
		}
		s.healthMu.Unlock()
	}
	srv := &http.Server{Handler: s.HTTPHandler(), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("system: serve: %w", err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		_ = srv.Close()
	}
	<-errc // http.ErrServerClosed
	return nil
}

// HTTPHandler serves every service's API on one mux: the live dashboard at /
// (its form posts to the orchestrator through /api/jobs), the orchestrator
// under /jobs, metrics under /metrics and /summary, the audit trail under
// /audit, health at /healthz, /readyz and /report, the consumers' handler
// signals at healthsvc.SignalsPath (/signals, as every reference program
// serves them), notification counts at /notifications/stats, the operator
// view at /ops.
func (s *System) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/jobs", s.Services.Orchestrator.Handler())
	mux.Handle("/jobs/", s.Services.Orchestrator.Handler())
	mux.Handle("/metrics", s.Services.Metrics.HTTPHandler())
	mux.Handle("/summary", s.Services.Metrics.HTTPHandler())
	mux.Handle("/audit", s.Services.Audit.HTTPHandler())
	mux.Handle("/audit/", s.Services.Audit.HTTPHandler())
	mux.Handle("/healthz", s.Services.Health.HTTPHandler())
	mux.Handle("/readyz", s.Services.Health.HTTPHandler())
	mux.Handle("/report", s.Services.Health.HTTPHandler())
	mux.Handle(healthsvc.SignalsPath, healthsvc.SignalsHandler(s.cfg.Platform.Signals))
	mux.Handle("/notifications/", http.StripPrefix("/notifications", s.Services.Notify.HTTPHandler()))
	mux.Handle(opsview.Path, s.Services.Ops.Handler())
	mux.Handle(opsview.Path+"/", s.Services.Ops.Handler())
	mux.Handle("/", s.Services.Dashboard.Handler())
	return mux
}

var (
	users    = []string{"ada", "grace", "edwin", "vera", "henrietta", "subrahmanyan", "jocelyn", "carl"}
	projects = []string{"proj-deep-field", "proj-pulsar-timing", "proj-exoplanet-survey", "proj-cmb-lensing"}
	scopes   = []struct{ telescope, instrument string }{
		{"VLT", "MUSE"}, {"ALMA", "Band 6"}, {"JWST", "NIRCam"}, {"Keck", "HIRES"}, {"LOFAR", "HBA"},
	}
	queues = []string{"batch", "gpu", "express"}
)

// SubmitJobs submits n jobs at rate per second (0: as fast as accepted),
// drawn from seed. It stops at the first submission the orchestrator
// refuses, or when ctx ends.
func (s *System) SubmitJobs(ctx context.Context, n int, rate float64, seed uint64) error {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	var tick <-chan time.Time
	if rate > 0 {
		t := time.NewTicker(time.Duration(float64(time.Second) / rate))
		defer t.Stop()
		tick = t.C
	}
	for i := range n {
		if tick != nil && i > 0 {
			select {
			case <-tick:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		sc := scopes[r.IntN(len(scopes))]
		q := queues[r.IntN(len(queues))]
		spec := eventmodels.JobSpec{
			ProjectID: projects[r.IntN(len(projects))], Telescope: sc.telescope, Instrument: sc.instrument,
			JobName: fmt.Sprintf("reduce-%04d", i+1), Queue: q, Priority: r.IntN(10),
			Resources: eventmodels.Resources{CPUCores: 4 << r.IntN(4), MemoryMB: 8192 << r.IntN(3), WalltimeSeconds: 3600},
		}
		if q == "gpu" {
			spec.Resources.GPUs = 1 + r.IntN(4)
		}
		if _, err := s.Services.Orchestrator.Submit(ctx, users[r.IntN(len(users))], spec); err != nil {
			return fmt.Errorf("system: submit job %d: %w", i+1, err)
		}
	}
	return nil
}

// Stop stops the health rounds, closes the consumers and stops the
// orchestrator, bounded by ctx.
func (s *System) Stop(ctx context.Context) {
	s.stopHealth()
	if s.Services.Orchestrator != nil {
		_ = s.Services.Orchestrator.Shutdown(ctx)
	}
	_ = broker.CloseAll(s.consumers...)
	s.consumers = nil
	for i := len(s.closers) - 1; i >= 0; i-- {
		_ = s.closers[i]()
	}
	s.closers = nil
}
