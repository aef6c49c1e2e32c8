// Command health runs the SystemHealthService: every few seconds it probes
// the Kafka and RabbitMQ backends (reachability, consumer lag per group),
// publishes system.health events, raises alert notifications when a
// condition starts and again when it clears, and serves /healthz, /readyz
// and /report.
//
//	go run ./examples/health --kafka-brokers 127.0.0.1:9092 --amqp-urls amqp://guest:guest@127.0.0.1:5672/ --http :8084
//
// Error-rate, latency and dead-letter figures come from the other services'
// GET /signals endpoints, named with --signals-from (every reference service
// serves one); without it only the backends' figures (reachability, lag) are
// watched. See docs/running.md.
//
//	go run ./examples/health --kafka-brokers 127.0.0.1:9092 \
//	    --signals-from http://127.0.0.1:8082/signals,http://127.0.0.1:8083/signals
package main

import (
	"context"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
	"github.com/cosmic-horizons/events/examples/internal/listflag"
	"github.com/cosmic-horizons/events/examples/internal/platform"
)

func main() {
	var interval time.Duration
	var lag int64
	var signalsFrom string
	os.Exit(platform.Main(platform.Service{
		Name: "health",
		Help: platform.Help{
			Doc: `runs the SystemHealthService: every --interval it probes the backends
(Kafka and RabbitMQ reachability, consumer lag per group), reads the other
services' handler signals (--signals-from), publishes system.health events and
raises an alert notification when a condition starts, and a "resolved" one when
it clears.`,
			Serves: []string{
				"GET /healthz   liveness",
				"GET /readyz    readiness: 503 with the reasons while a backend is unreachable (JSON)",
				"GET /report    the latest round: backends, lag, services' signals, active alerts (JSON)",
			},
			Examples: []string{
				"go run ./examples/health --kafka-brokers 127.0.0.1:9092 --amqp-urls amqp://guest:guest@127.0.0.1:5672/ --http 127.0.0.1:8084",
				"go run ./examples/health --kafka-brokers 127.0.0.1:9092 --interval 5s --signals-from http://127.0.0.1:8082/signals,http://127.0.0.1:8083/signals",
			},
		},
		Flags: func(fs *flag.FlagSet) {
			fs.DurationVar(&interval, "interval", 5*time.Second, "time between health rounds")
			fs.Int64Var(&lag, "lag-threshold", 1000, "consumer lag (messages) that raises an alert")
			fs.StringVar(&signalsFrom, "signals-from", "", "comma-separated URLs of the services' GET /signals endpoints (handler error rate, latency, dead letters)")
		},
		Start: func(ctx context.Context, p *platform.Platform, log *slog.Logger) (http.Handler, func(context.Context) error, error) {
			var signals healthsvc.SignalSource = p.Signals
			var remote *healthsvc.Remote
			if signalsFrom != "" {
				r, err := healthsvc.NewRemote(healthsvc.RemoteConfig{URLs: listflag.Split(signalsFrom), Logger: log})
				if err != nil {
					return nil, nil, err
				}
				signals, remote = r, r
			}
			svc, err := healthsvc.New(healthsvc.Config{
				Checkers: p.Health, Signals: signals, Publisher: p.Durable, Interval: interval,
				Thresholds: healthsvc.Thresholds{Lag: lag}, Logger: log,
			})
			if err != nil {
				return nil, nil, err
			}
			rctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			if remote != nil {
				wg.Go(func() { _ = remote.Run(rctx, interval, healthsvc.DefaultWindow) })
			}
			wg.Go(func() { _ = svc.Run(rctx) })
			return svc.HTTPHandler(), func(context.Context) error { stop(); wg.Wait(); return nil }, nil
		},
	}, os.Args[1:]))
}
