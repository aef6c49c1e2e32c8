// Command health runs the SystemHealthService: every few seconds it probes
// the Kafka and RabbitMQ backends (reachability, consumer lag per group),
// publishes system.health events, raises alert notifications when a
// condition starts and again when it clears, and serves /healthz, /readyz
// and /report.
//
//	go run ./examples/health --kafka-brokers 127.0.0.1:9092 --amqp-urls amqp://guest:guest@127.0.0.1:5672/ --http :8084
//
// Error-rate and latency alerts need the handler signals of the services,
// which a separate process does not see: they are raised in the demo, where
// all services share one process. See docs/running.md.
package main

import (
	"context"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
	"github.com/cosmic-horizons/events/examples/internal/platform"
)

func main() {
	var interval time.Duration
	var lag int64
	os.Exit(platform.Main(platform.Service{
		Name: "health",
		Flags: func(fs *flag.FlagSet) {
			fs.DurationVar(&interval, "interval", 5*time.Second, "time between health rounds")
			fs.Int64Var(&lag, "lag-threshold", 1000, "consumer lag (messages) that raises an alert")
		},
		Start: func(ctx context.Context, p *platform.Platform, log *slog.Logger) (http.Handler, func(context.Context) error, error) {
			svc, err := healthsvc.New(healthsvc.Config{
				Checkers: p.Health, Signals: p.Signals, Publisher: p.Durable, Interval: interval,
				Thresholds: healthsvc.Thresholds{Lag: lag}, Logger: log,
			})
			if err != nil {
				return nil, nil, err
			}
			rctx, stop := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { defer close(done); _ = svc.Run(rctx) }()
			return svc.HTTPHandler(), func(context.Context) error { stop(); <-done; return nil }, nil
		},
	}, os.Args[1:]))
}
