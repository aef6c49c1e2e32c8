// Command orchestrator runs the JobOrchestratorService alone: its HTTP API
// (POST/GET /jobs, GET/DELETE /jobs/{id}) drives jobs through their
// lifecycle on a simulated HPC executor and publishes every transition on
// the durable path (Kafka) and the real-time path (RabbitMQ). On start it
// resumes the unfinished jobs recorded in job-lifecycle.
//
//	go run ./examples/orchestrator --kafka-brokers 127.0.0.1:9092 --amqp-urls amqp://guest:guest@127.0.0.1:5672/ --http :8081
//
// See docs/running.md.
package main

import (
	"context"
	"flag"
	"log/slog"
	"net/http"
	"os"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/orchestrator"
	"github.com/cosmic-horizons/events/examples/internal/platform"
)

func main() {
	var sim orchestrator.SimConfig
	os.Exit(platform.Main(platform.Service{
		Name: "orchestrator",
		Flags: func(fs *flag.FlagSet) {
			fs.Uint64Var(&sim.Seed, "seed", 1, "seed of the simulated executor")
			fs.Float64Var(&sim.FailureRatio, "failure-ratio", 0.1, "share of jobs that fail, 0–1")
			fs.Float64Var(&sim.Speed, "speed", 1, "simulated time per wall time (1: a job takes ~12 s)")
		},
		Start: func(ctx context.Context, p *platform.Platform, log *slog.Logger) (http.Handler, func(context.Context) error, error) {
			svc, err := orchestrator.New(orchestrator.Config{
				Durable: p.Durable, Realtime: p.Realtime, Replayer: p.Replayer, Sim: sim, Logger: log,
				// Drops show in /signals and raise the health service's
				// events_dropped alert.
				OnRealtimeDrop: func(eventmodels.Event, error) { p.Signals.RecordDropped("orchestrator", 1) },
			})
			if err != nil {
				return nil, nil, err
			}
			rep, err := svc.Restore(ctx)
			if err != nil {
				return nil, nil, err
			}
			log.Info("restored from job-lifecycle", "events", rep.Events, "jobs", rep.Jobs, "resumed", rep.Resumed, "finished", rep.Finished)
			return svc.Handler(), svc.Shutdown, nil
		},
	}, os.Args[1:]))
}
