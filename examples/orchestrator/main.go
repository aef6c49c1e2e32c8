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
		Help: platform.Help{
			Doc: `runs the JobOrchestratorService alone. Its HTTP API accepts jobs and
drives each through its lifecycle (submitted, queued, running, then completed,
failed or cancelled) on a simulated HPC executor, publishing every transition
on the durable path (Kafka: job-lifecycle, job-metrics) and the real-time path
(RabbitMQ or the in-memory bus). On start it replays job-lifecycle and resumes
the jobs it had not finished. The failures it simulates (--failure-ratio) are
expected: they are logged at INFO as "simulated job failure".`,
			Serves: []string{
				"POST /jobs            submit a job (JSON: user_id, project_id, telescope, queue, resources)",
				"GET  /jobs            every job with its status and progress",
				"GET  /jobs/{id}       one job",
				"DELETE /jobs/{id}     cancel a job (?reason=…, X-User-ID)",
			},
			Examples: []string{
				"go run ./examples/orchestrator --kafka-brokers 127.0.0.1:9092 --amqp-urls amqp://guest:guest@127.0.0.1:5672/ --http 127.0.0.1:8081",
				"go run ./examples/orchestrator --speed 5 --failure-ratio 0.2   # on a private embedded Kafka, jobs 5x faster",
			},
		},
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
