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
//	go run ./examples/demo --serve :8080         # keep serving the APIs, dashboard, health and signals afterwards
//
// It exits 1 when the summary reports a lost event, an order violation or a
// broken audit chain.
package main

import (
	"context"
	"flag"
	"fmt"
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

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		popts    platform.Options
		jobs     = flag.Int("jobs", 200, "number of jobs to submit")
		rate     = flag.Float64("rate", 100, "jobs submitted per second (0: all at once)")
		failures = flag.Float64("failure-ratio", 0.1, "share of jobs that fail while running, 0–1")
		seed     = flag.Uint64("seed", 1, "seed of every random choice (same seed, same jobs)")
		speed    = flag.Float64("speed", 20, "simulated time per wall time (1: a job takes ~12 s; 20: ~0.6 s)")
		serve    = flag.String("serve", "", "after the run, keep serving the APIs, health (rounds keep running) and /signals on this address (e.g. :8080) until interrupted")
		quiet    = flag.Bool("quiet", false, "no live progress line")
		auditDir = flag.String("audit-dir", "", "directory of the audit trail (kept); default a temporary one, removed at exit")
		verbose  = flag.Bool("v", false, "log the services' warnings and errors to stderr")
	)
	popts.RegisterFlags(flag.CommandLine)
	flag.Parse()
	if *jobs < 1 || *rate < 0 || *failures < 0 || *failures > 1 || *speed < 0 {
		return fmt.Errorf("bad flags: need --jobs ≥ 1, --rate ≥ 0, 0 ≤ --failure-ratio ≤ 1, --speed ≥ 0")
	}
	logger := slog.New(slog.DiscardHandler)
	if *verbose {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	popts.Logger, popts.Source = logger, "urn:cosmic-horizons:demo"

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	fmt.Printf("Cosmic Horizons demo: %d jobs at %g/s, %.0f%% failing, seed %d\n", *jobs, *rate, *failures*100, *seed)
	p, err := platform.Open(ctx, popts)
	if err != nil {
		return err
	}
	defer p.Close()
	if p.Embedded != nil {
		fmt.Printf("durable path:   embedded Kafka cluster (kfake) at %s\n", strings.Join(p.KafkaAddrs, ","))
	} else {
		fmt.Printf("durable path:   Kafka at %s\n", strings.Join(p.KafkaAddrs, ","))
	}
	fmt.Printf("real-time path: %s\n\n", p.RealtimeDesc)

	dir := *auditDir
	if dir == "" {
		tmp, err := os.MkdirTemp("", "cosmic-horizons-audit-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	var progress = os.Stderr
	cfg := system.Config{
		Platform: p, Jobs: *jobs, Rate: *rate, Logger: logger, AuditDir: dir,
		Sim: orchestrator.SimConfig{Seed: *seed, FailureRatio: *failures, Speed: *speed},
	}
	if !*quiet {
		cfg.Progress = progress
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
	sum, err := sys.Run(ctx)
	if err != nil {
		return err
	}
	sum.Print(os.Stdout)
	if *serve != "" {
		ln, err := net.Listen("tcp", *serve)
		if err != nil {
			return err
		}
		fmt.Printf("\nserving on http://%s (Ctrl-C stops)\n", ln.Addr())
		if err := sys.Serve(ctx, ln); err != nil {
			return err
		}
	}
	if !sum.OK() {
		return fmt.Errorf("the run lost events or broke order (see the summary)")
	}
	return nil
}
