// Command demo runs the whole Cosmic Horizons event platform in one process —
// the job orchestrator and the consumer services — submits a stream of jobs,
// shows live progress, and ends with a summary that proves nothing was lost:
// events published and consumed per service, per-job order, audit chain,
// publish→consume latency.
//
// With no flags it needs no server: the durable path runs on an in-process
// Kafka cluster and the real-time path on the in-memory bus.
//
//	go run ./examples/demo                       # 200 jobs on the embedded default
//	go run ./examples/demo --jobs 1000 --rate 200 --failure-ratio 0.2
//	go run ./examples/demo --kafka-brokers k1:9092 --amqp-urls amqp://guest:guest@127.0.0.1:5672/
//	go run ./examples/demo --serve 127.0.0.1:8080   # the dashboard, operator view and APIs, from the start until interrupted
//
// It exits 1 when the summary reports a lost event, an order violation or a
// broken audit chain.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cosmic-horizons/events/examples/internal/orchestrator"
	"github.com/cosmic-horizons/events/examples/internal/platform"
	"github.com/cosmic-horizons/events/examples/internal/system"
)

var help = platform.Help{
	Name: "demo",
	Doc: `runs the whole Cosmic Horizons event platform in one process — the job
orchestrator, the metrics, audit, notification and health services and the
live dashboard — submits a stream of jobs to it, shows their progress and ends
with a summary proving that every service consumed every event, in order per
job, with the audit chain intact. It exits 1 if anything was lost or out of
order.

With no flags it needs no server: the durable path runs on an embedded Kafka
cluster (in this process, real wire protocol) and the real-time path on the
in-memory bus. The simulated executor fails --failure-ratio of the jobs on
purpose; those failures are expected and say "simulated".`,
	Serves: []string{
		"with --serve ADDR, from the start of the run until interrupted:",
		"GET /                  the live job dashboard",
		"GET /ops               the operator view: publish/consume rate per topic, consumer lag, handler P50/P99, retries, dead letters, brokers, alerts",
		"GET /ops/api/series    the operator view's samples (JSON)",
		"/jobs, /jobs/{id}      the orchestrator's API",
		"GET /summary, /metrics the metrics service",
		"GET /audit?job_id=…    the audit trail (/audit/verify, /audit/stats)",
		"GET /healthz, /readyz, /report   the health service",
		"GET /signals           every consumer's handler signals",
		"GET /notifications/stats         notifications emitted and delivered",
	},
	Examples: []string{
		"go run ./examples/demo                                   # 200 jobs, embedded Kafka + in-memory bus",
		"go run ./examples/demo --jobs 1000 --rate 200 --failure-ratio 0.2 --seed 7",
		"go run ./examples/demo --serve 127.0.0.1:8080 --speed 2   # watch http://127.0.0.1:8080/ and /ops while it runs",
		"go run ./examples/demo --amqp-urls amqp://guest:guest@127.0.0.1:5672/   # real-time path on RabbitMQ",
		"go run ./examples/demo --log-level info 2>demo.log       # the services' logs",
	},
}

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

// isTerminal reports whether w is a terminal (a character device), where
// the progress line may be rewritten in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		popts    platform.Options
		jobs     = fs.Int("jobs", 200, "number of jobs to submit")
		rate     = fs.Float64("rate", 100, "jobs submitted per second (0: all at once)")
		failures = fs.Float64("failure-ratio", 0.1, "share of jobs that fail (on purpose: simulated failures) while running, 0–1")
		seed     = fs.Uint64("seed", 1, "seed of every random choice (same seed, same jobs)")
		speed    = fs.Float64("speed", 20, "simulated time per wall time (1: a job takes ~12 s; 20: ~0.6 s)")
		serve    = fs.String("serve", "", "serve the dashboard, the operator view (/ops), the APIs, health and /signals on this address (e.g. 127.0.0.1:8080) from the start, and after the summary until interrupted")
		quiet    = fs.Bool("quiet", false, "no progress")
		auditDir = fs.String("audit-dir", "", "directory of the audit trail (kept); default a temporary one, removed at exit")
		verbose  = fs.Bool("v", false, "log the services' warnings and errors to stderr (--log-level warn)")
		level    = fs.String("log-level", "", "log the services at this level to stderr: debug, info, warn or error; default none (warn with -v)")
	)
	popts.RegisterFlags(fs)
	fs.Usage = platform.Usage(fs, help)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *jobs < 1 || *rate < 0 || *failures < 0 || *failures > 1 || *speed < 0 {
		return fmt.Errorf("bad flags: need --jobs ≥ 1, --rate ≥ 0, 0 ≤ --failure-ratio ≤ 1, --speed ≥ 0")
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose && *level == "" {
		*level = "warn"
	}
	if *level != "" {
		var lvl slog.Level
		if err := lvl.UnmarshalText([]byte(*level)); err != nil {
			return fmt.Errorf("--log-level: %w", err)
		}
		logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	}
	popts.Logger, popts.Source = logger, "urn:cosmic-horizons:demo"

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Fprintf(stdout, "Cosmic Horizons demo: %d jobs at %g/s, %.0f%% failing (simulated), seed %d\n", *jobs, *rate, *failures*100, *seed)
	var ln net.Listener
	if *serve != "" {
		// Listen first: a taken address fails at once, not after the start.
		var err error
		if ln, err = net.Listen("tcp", *serve); err != nil {
			return err
		}
		defer ln.Close()
	}
	began := time.Now()
	step := func(what string) {
		fmt.Fprintf(stdout, "  %5.1fs  %s\n", time.Since(began).Seconds(), what)
	}
	popts.Step = step
	p, err := platform.Open(ctx, popts)
	if err != nil {
		return err
	}
	defer p.Close()
	if p.Embedded != nil {
		fmt.Fprintf(stdout, "durable path:   embedded Kafka cluster (kfake) at %s\n", strings.Join(p.KafkaAddrs, ","))
	} else {
		fmt.Fprintf(stdout, "durable path:   Kafka at %s\n", strings.Join(p.KafkaAddrs, ","))
	}
	fmt.Fprintf(stdout, "real-time path: %s\n", p.RealtimeDesc)

	dir := *auditDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "cosmic-horizons-audit-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	cfg := system.Config{
		Platform: p, Jobs: *jobs, Rate: *rate, Logger: logger, AuditDir: dir, Step: step,
		Sim: orchestrator.SimConfig{Seed: *seed, FailureRatio: *failures, Speed: *speed},
	}
	if !*quiet {
		// On a terminal one line rewritten in place; in a log or a pipe,
		// plain lines.
		cfg.Progress, cfg.ProgressLines = stderr, !isTerminal(stderr)
	}
	sys, err := system.Start(ctx, cfg)
	if err != nil {
		return err
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		sys.Stop(sctx)
	}()
	var served chan error
	sctx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	if ln != nil {
		served = make(chan error, 1)
		go func() { served <- sys.Serve(sctx, ln) }()
		fmt.Fprintf(stdout, "serving on http://%s: the job dashboard at /, the operator view at /ops (Ctrl-C stops)\n", ln.Addr())
	}
	fmt.Fprintf(stdout, "started in %.1fs; submitting %d jobs\n\n", time.Since(began).Seconds(), *jobs)
	sum, err := sys.Run(ctx)
	if err != nil {
		return err
	}
	sum.Print(stdout)
	if served != nil {
		fmt.Fprintf(stdout, "\nstill serving on http://%s (Ctrl-C stops)\n", ln.Addr())
		if err := <-served; err != nil {
			return err
		}
	}
	if !sum.OK() {
		return fmt.Errorf("the run lost events or broke order (see the summary)")
	}
	return nil
}
