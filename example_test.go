package events_test

import (
	"context"
	"fmt"
	"log"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/eventmodels"
)

// The README's quick start (TestReadmeCodeIsTested keeps the two the same):
// publish a typed event and consume it with a typed handler, on the
// embedded in-memory backend.
func Example() {
	// [quick-start]
	ctx := context.Background()
	backend, err := memory.New(ctx, memory.Config{}) // or kafkabus.New(ctx, cfg), rabbitbus.New(ctx, cfg)
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	bus, err := events.NewBus(backend) // the typed layer: topic, key, CloudEvents headers, Avro or JSON body
	if err != nil {
		log.Fatal(err)
	}

	handled := make(chan struct{})
	r := events.NewRouter() // one handler per event type, decoded once
	events.On(r, func(ctx context.Context, e *eventmodels.JobCompleted) error {
		fmt.Println(e.JobID, "used", e.Usage.CPUHours, "CPU hours")
		close(handled)
		return nil // acknowledged only now; an error is retried, then dead-lettered
	})
	consumer, err := bus.Subscribe(ctx, broker.Subscription{
		Group:       "billing", // topics come from the handlers' event types: job-lifecycle
		Concurrency: 8,         // handlers run in parallel, in order per job
		Retry:       broker.RetryPolicy{MaxAttempts: 5},
	}, r)
	if err != nil {
		log.Fatal(err)
	}
	defer consumer.Close() // drains in-flight handlers

	done := eventmodels.NewJobCompleted("astro-user-7", "job-42", eventmodels.Usage{CPUHours: 12.5, Progress: 100})
	if err := bus.Publish(ctx, done); err != nil { // returns once the backend has it (acks=all, confirms)
		log.Fatal(err)
	}
	<-handled
	// [/quick-start]
	// Output: job-42 used 12.5 CPU hours
}
