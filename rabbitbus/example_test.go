package rabbitbus_test

import (
	"context"
	"log"
	"log/slog"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/rabbitbus"
)

// A notification service: it reads its broker settings from the
// environment (AMQP_URLS), consumes completed and failed jobs with four
// workers (order kept per job), and publishes typed events through a Bus.
// It needs a RabbitMQ broker, so the example is compiled but not run.
func Example() {
	ctx := context.Background()
	cfg, err := rabbitbus.ConfigFromEnv()
	if err != nil {
		log.Fatal(err) // names every variable that does not parse
	}
	cfg.Logger = slog.Default()
	b, err := rabbitbus.New(ctx, cfg)
	if err != nil {
		log.Fatal(err) // a *rabbitbus.ConnectError when no node answers
	}
	defer b.Close() // drains the subscriptions, then closes the connections

	bus, err := events.NewBus(b, events.WithSource("notification-service"))
	if err != nil {
		log.Fatal(err)
	}
	r := events.NewRouter()
	events.On(r, func(ctx context.Context, e *eventmodels.JobCompleted) error {
		log.Printf("job %s completed: %s", e.JobID, e.OutputURI)
		return nil // acknowledged; an error is retried, then dead-lettered
	})
	events.On(r, func(ctx context.Context, e *eventmodels.JobFailed) error {
		log.Printf("job %s failed: %s", e.JobID, e.ErrorMessage)
		return nil
	})
	_, err = bus.Subscribe(ctx, broker.Subscription{
		Group:       "notification-service", // queue "job-lifecycle.notification-service"
		EventTypes:  []string{eventmodels.TypeJobCompleted, eventmodels.TypeJobFailed},
		Concurrency: 4,
	}, r)
	if err != nil {
		log.Fatal(err)
	}

	done := eventmodels.NewJobCompleted("user-1", "job-42", eventmodels.Usage{Progress: 100})
	if err := bus.Publish(ctx, done); err != nil {
		log.Fatal(err) // confirmed by the broker when nil
	}
}

// Provisioning at deploy time: the group's queue exists (and keeps what is
// published) before the first member of the group starts.
func ExampleBackend_DeclareGroup() {
	ctx := context.Background()
	c, err := rabbitbus.New(ctx, rabbitbus.Config{URLs: []string{"amqp://guest:guest@127.0.0.1:5672/"}})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for _, t := range events.PlatformTopics() {
		if err := c.DeclareGroup(ctx, broker.Subscription{Topic: t.Name, Group: "compliance-auditor"}); err != nil {
			log.Fatal(err) // a *rabbitbus.TopologyError on an argument mismatch
		}
	}
}
