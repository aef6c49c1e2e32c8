// Command health runs the SystemHealthService: every few seconds it probes
// the Kafka and RabbitMQ backends (reachability, brokers and nodes
// answering, consumer lag per group, partition leaders, log volumes),
// publishes system.health events, raises alert notifications when a
// condition starts and again when it clears, and serves /healthz, /readyz,
// /report and /history.
//
//	go run ./examples/health --kafka-brokers 127.0.0.1:9092 --amqp-urls amqp://guest:guest@127.0.0.1:5672/ --http :8084
//
// Consumer lag covers every consumer group the Kafka cluster lists
// (--lag-discover, on by default), plus the groups named with --lag-groups
// (env HEALTH_LAG_GROUPS): "group" for a Kafka group on every topic it
// committed on, "group@topic" for a durable group on a topic, whose
// RabbitMQ queue depth is read too.
//
// Error-rate, latency, dead-letter and drop figures come from the other
// services' GET /signals endpoints, named with --signals-from (every
// reference service serves one); without it only the backends' figures
// are watched. An endpoint that stops answering raises source_unreachable
// and keeps its services' alerts open. See docs/running.md and the alert
// list in docs/operations.md.
//
//	go run ./examples/health --kafka-brokers 127.0.0.1:9092 \
//	    --signals-from http://127.0.0.1:8082/signals,http://127.0.0.1:8083/signals
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
	"github.com/cosmic-horizons/events/examples/internal/platform"
	"github.com/cosmic-horizons/events/internal/envconf"
	"github.com/cosmic-horizons/events/rabbitbus"
)

func main() {
	var (
		interval, signalsTimeout time.Duration
		th                       healthsvc.Thresholds
		hy                       healthsvc.Hysteresis
		signalsFrom, lagGroups   string
		lagDiscover              bool
	)
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
			fs.Int64Var(&th.Lag, "lag-threshold", healthsvc.DefaultLag, "consumer lag (messages) that raises an alert")
			fs.Float64Var(&th.ErrorRate, "error-rate", healthsvc.DefaultErrorRate, "share of failed handler attempts over the window that raises an alert")
			fs.DurationVar(&th.P99, "p99", healthsvc.DefaultP99, "P99 handler time over the window that raises an alert")
			fs.DurationVar(&th.Window, "window", healthsvc.DefaultWindow, "window of the error rate, P99 and drop figures")
			fs.Int64Var(&th.MinSamples, "min-samples", healthsvc.DefaultMinSamples, "fewest handler attempts in the window for error rate and P99 to be judged")
			fs.DurationVar(&th.Stuck, "stuck", healthsvc.DefaultStuck, "longest a subscription may hold one message")
			fs.Float64Var(&th.Imbalance, "imbalance", healthsvc.DefaultImbalance, "partition leaders of one Kafka broker, as a multiple of its fair share, that raise an alert")
			fs.Float64Var(&th.DiskUsage, "disk-usage", healthsvc.DefaultDiskUsage, "Kafka log volume usage (percent) that raises an alert")
			fs.IntVar(&hy.ClearAfter, "clear-after", healthsvc.DefaultClearAfter, "consecutive good rounds before an alert clears")
			fs.StringVar(&signalsFrom, "signals-from", "", "comma-separated URLs of the services' GET /signals endpoints (handler error rate, latency, dead letters, drops)")
			fs.DurationVar(&signalsTimeout, "signals-timeout", 2*time.Second, "bound of each /signals fetch; two failed fetches in a row make the endpoint unreachable")
			fs.StringVar(&lagGroups, "lag-groups", os.Getenv("HEALTH_LAG_GROUPS"), `consumer groups whose lag is watched besides the discovered ones (env HEALTH_LAG_GROUPS): "group" (Kafka, every topic) or "group@topic" (Kafka and the RabbitMQ queue of that group)`)
			fs.BoolVar(&lagDiscover, "lag-discover", true, "watch the lag of every consumer group the Kafka cluster lists")
		},
		Options: func(o *platform.Options) error {
			kafka, rabbit, err := parseLagGroups(lagGroups)
			if err != nil {
				return err
			}
			o.LagGroups, o.RabbitLagGroups, o.LagDiscover = kafka, rabbit, lagDiscover
			return nil
		},
		Start: func(ctx context.Context, p *platform.Platform, log *slog.Logger) (http.Handler, func(context.Context) error, error) {
			var signals healthsvc.SignalSource = p.Signals
			var remote *healthsvc.Remote
			if signalsFrom != "" {
				r, err := healthsvc.NewRemote(healthsvc.RemoteConfig{URLs: envconf.Split(signalsFrom), Timeout: signalsTimeout, Logger: log})
				if err != nil {
					return nil, nil, err
				}
				signals, remote = r, r
			}
			svc, err := healthsvc.New(healthsvc.Config{
				Checkers: p.Health, Signals: signals, Publisher: p.Durable, Interval: interval,
				Thresholds: th, Hysteresis: hy, Logger: log,
			})
			if err != nil {
				return nil, nil, err
			}
			rctx, stop := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			if remote != nil {
				window := th.Window
				if window == 0 {
					window = healthsvc.DefaultWindow
				}
				wg.Go(func() { _ = remote.Run(rctx, interval, window) })
			}
			wg.Go(func() { _ = svc.Run(rctx) })
			return svc.HTTPHandler(), func(context.Context) error { stop(); wg.Wait(); return nil }, nil
		},
	}, os.Args[1:]))
}

// parseLagGroups splits --lag-groups: "group" entries are Kafka groups,
// "group@topic" entries Kafka groups and RabbitMQ group queues.
func parseLagGroups(s string) (kafka []string, rabbit []rabbitbus.LagGroup, err error) {
	for _, e := range envconf.Split(s) {
		group, topic, at := strings.Cut(e, "@")
		if group == "" || (at && topic == "") {
			return nil, nil, fmt.Errorf(`--lag-groups: %q: want "group" or "group@topic"`, e)
		}
		kafka = append(kafka, group)
		if at {
			rabbit = append(rabbit, rabbitbus.LagGroup{Topic: topic, Group: group})
		}
	}
	return kafka, rabbit, nil
}
