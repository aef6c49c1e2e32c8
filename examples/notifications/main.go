// Command notifications runs the NotificationService and the live job
// dashboard. It consumes job-lifecycle from the durable path and, when a job
// completes, fails or is cancelled, emits a notification event to the
// notifications topic and delivers it through the channels each user's
// preferences choose: log, webhook (retries, then notifications.dlq) and
// live push to the dashboard. The dashboard at / follows every job over a
// WebSocket fed by the real-time path; its form submits jobs through the
// orchestrator, reached at --orchestrator-url.
//
//	go run ./examples/notifications --kafka-brokers 127.0.0.1:9092 --amqp-urls amqp://guest:guest@127.0.0.1:5672/ \
//	    --http :8080 --orchestrator-url http://127.0.0.1:8081 --webhook-url https://hooks.example.internal/jobs --prefs prefs.json
//
// See docs/running.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/dashboard"
	"github.com/cosmic-horizons/events/examples/internal/notifysvc"
	"github.com/cosmic-horizons/events/examples/internal/platform"
)

func main() {
	var group, prefsPath, webhookURL, orchestratorURL string
	os.Exit(platform.Main(platform.Service{
		Name: "notifications",
		Help: platform.Help{
			Doc: `runs the NotificationService and the live job dashboard. It consumes
job-lifecycle from the durable path (Kafka) and turns each completed, failed
or cancelled job into notifications, delivered on the channels each user's
preferences choose: log, webhook (--webhook-url; retries, then
notifications.dlq) and live push to the dashboard's browsers. The dashboard
follows every job from the real-time path; its form submits jobs through the
orchestrator (--orchestrator-url). /ops is the operator's view of the event
system beneath.`,
			Serves: []string{
				"GET /                       the live job dashboard (WebSocket at /ws)",
				"GET /ops                    the operator view: rates per topic, lag, handler latency, retries, dead letters, broker reachability, alerts (charts)",
				"GET /ops/api/series         the operator view's samples (JSON)",
				"/api/jobs…                  proxied to --orchestrator-url",
				"GET /notifications/stats    notifications emitted and delivered per channel (JSON)",
			},
			Examples: []string{
				"go run ./examples/notifications --kafka-brokers 127.0.0.1:9092 --amqp-urls amqp://guest:guest@127.0.0.1:5672/ --http 127.0.0.1:8080 --orchestrator-url http://127.0.0.1:8081",
				"go run ./examples/notifications --http 127.0.0.1:8080 --webhook-url http://127.0.0.1:9000/hook --prefs prefs.json",
			},
		},
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&group, "group", "notification-service", "consumer group")
			fs.StringVar(&prefsPath, "prefs", "", "notification preferences (JSON); default: every terminal event to every channel")
			fs.StringVar(&webhookURL, "webhook-url", "", "deliver notifications by HTTP POST to this URL too")
			fs.StringVar(&orchestratorURL, "orchestrator-url", "", "the orchestrator's API, for the dashboard's submit form and re-sync (e.g. http://127.0.0.1:8081)")
		},
		Start: func(ctx context.Context, p *platform.Platform, log *slog.Logger) (http.Handler, func(context.Context) error, error) {
			return start(ctx, p, log, group, prefsPath, webhookURL, orchestratorURL)
		},
	}, os.Args[1:]))
}

func start(ctx context.Context, p *platform.Platform, log *slog.Logger, group, prefsPath, webhookURL, orchestratorURL string) (_ http.Handler, _ func(context.Context) error, err error) {
	var jobsAPI http.Handler
	if orchestratorURL != "" {
		u, err := url.Parse(orchestratorURL)
		if err != nil || u.Scheme == "" || u.Host == "" {
			return nil, nil, fmt.Errorf("--orchestrator-url %q: want an absolute http(s) URL", orchestratorURL)
		}
		jobsAPI = httputil.NewSingleHostReverseProxy(u)
	}
	dash, err := dashboard.New(dashboard.Config{JobsAPI: jobsAPI, Logger: log})
	if err != nil {
		return nil, nil, err
	}
	var consumers []broker.Consumer
	var svc *notifysvc.Service
	stop := func(context.Context) error {
		errs := []error{broker.CloseAll(consumers...)}
		if svc != nil {
			errs = append(errs, svc.Close())
		}
		errs = append(errs, dash.Close())
		return errors.Join(errs...)
	}
	defer func() {
		if err != nil {
			_ = stop(context.Background())
		}
	}()
	c, err := dash.Subscribe(ctx, p.Realtime)
	if err != nil {
		return nil, nil, err
	}
	consumers = append(consumers, c)

	channels := []notifysvc.Channel{notifysvc.NewLogChannel(log), notifysvc.NewBrowserChannel(dash)}
	if webhookURL != "" {
		wh, err := notifysvc.NewWebhookChannel(notifysvc.WebhookConfig{
			URL: webhookURL, Logger: log, DeadLetters: notifysvc.TopicDeadLetters(p.Durable, p.DurableBackend, group),
		})
		if err != nil {
			return nil, nil, err
		}
		channels = append(channels, wh)
	}
	var prefs *notifysvc.Preferences
	if prefsPath != "" {
		if prefs, err = notifysvc.LoadPreferences(prefsPath); err != nil {
			return nil, nil, err
		}
	}
	svc, err = notifysvc.New(notifysvc.Config{Publisher: p.Durable, Channels: channels, Preferences: prefs, Logger: log,
		// Deliveries count in the signals, per channel (service
		// "<group>/<channel>"): a webhook that gives up and parks its
		// notifications raises error_rate though the handler succeeds.
		OnDelivery: func(ch eventmodels.Channel, err error, deadLettered bool) {
			p.Signals.RecordOutcome(group+"/"+string(ch), err, deadLettered)
		},
	})
	if err != nil {
		return nil, nil, err
	}
	if c, err = svc.Subscribe(ctx, p.Durable, group, 8); err != nil {
		return nil, nil, err
	}
	consumers = append(consumers, c)

	mux := http.NewServeMux()
	mux.Handle("/notifications/", http.StripPrefix("/notifications", svc.HTTPHandler()))
	mux.Handle("/", dash.Handler())
	log.Info("notification channels", "channels", channelNames(channels))
	return mux, stop, nil
}

func channelNames(cs []notifysvc.Channel) []eventmodels.Channel {
	out := make([]eventmodels.Channel, len(cs))
	for i, c := range cs {
		out[i] = c.Name()
	}
	return out
}
