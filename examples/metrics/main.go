// Command metrics runs the MetricsService alone: it consumes job-lifecycle
// and job-metrics from the durable path and serves GET /metrics (Prometheus
// text format) and GET /summary (JSON).
//
//	go run ./examples/metrics --kafka-brokers 127.0.0.1:9092 --http :8082
//
// See docs/running.md.
package main

import (
	"context"
	"flag"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/cosmic-horizons/events/examples/internal/metricsvc"
	"github.com/cosmic-horizons/events/examples/internal/platform"
)

func main() {
	var group string
	var retain int
	os.Exit(platform.Main(platform.Service{
		Name: "metrics",
		Help: platform.Help{
			Doc: `runs the MetricsService alone: it consumes job-lifecycle and job-metrics
from the durable path (Kafka) in its own consumer group and keeps, per job,
user and project, the jobs by state, CPU and GPU hours and durations.`,
			Serves: []string{
				"GET /metrics     Prometheus text format",
				"GET /summary     totals: jobs by state, events consumed, hours per user and project (JSON)",
				"GET /jobs/{id}   one job's record (JSON)",
			},
			Examples: []string{
				"go run ./examples/metrics --kafka-brokers 127.0.0.1:9092 --http 127.0.0.1:8082",
			},
		},
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&group, "group", "metrics-service", "consumer group")
			fs.IntVar(&retain, "retain-jobs", metricsvc.DefaultRetainJobs, "finished jobs kept with their own record; older ones are folded into the totals")
		},
		Start: func(ctx context.Context, p *platform.Platform, log *slog.Logger) (http.Handler, func(context.Context) error, error) {
			svc, err := metricsvc.New(metricsvc.Config{Health: p.Health["kafka"], RetainJobs: retain})
			if err != nil {
				return nil, nil, err
			}
			c, err := svc.Subscribe(ctx, p.Durable, group, 8)
			if err != nil {
				return nil, nil, err
			}
			lagCtx, stopLag := context.WithCancel(ctx)
			go func() {
				t := time.NewTicker(5 * time.Second)
				defer t.Stop()
				for {
					select {
					case <-lagCtx.Done():
						return
					case <-t.C:
						if err := svc.RefreshLag(lagCtx); err != nil {
							log.Warn("consumer lag not refreshed", "error", err)
						}
					}
				}
			}()
			return svc.HTTPHandler(), func(context.Context) error {
				stopLag()
				return c.Close()
			}, nil
		},
	}, os.Args[1:]))
}
