package events_test

import (
	"context"
	"fmt"
	"log"
	"sync"
	"sync/atomic"

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

// Publishing many events: one Publish call per batch waits one round trip
// for the whole batch; PublishAsync keeps events in flight without waiting
// and reports each call's outcome to its done func.
func ExampleBus_PublishAsync() {
	ctx := context.Background()
	backend, err := memory.New(ctx, memory.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	bus, err := events.NewBus(backend)
	if err != nil {
		log.Fatal(err)
	}
	// [publish-many]
	// A batch: one call, one wait; a *broker.PublishError names any event
	// that failed (the others are confirmed).
	batch := make([]eventmodels.Event, 0, 100)
	for i := range 100 {
		batch = append(batch, eventmodels.NewJobQueued("astro-user-7", fmt.Sprintf("job-%03d", i), "gpu", i))
	}
	if err := bus.Publish(ctx, batch...); err != nil {
		log.Fatal(err)
	}

	// A stream: PublishAsync returns once the events are handed over; done
	// runs once per call with what Publish would have returned. Keep the
	// failed ones to publish again (at-least-once); events of one key keep
	// their order on Kafka and memory.
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range 1000 {
		e := eventmodels.NewJobQueued("astro-user-7", fmt.Sprintf("job-%03d", i%100), "gpu", i)
		wg.Add(1)
		err := bus.PublishAsync(ctx, func(err error) {
			if err != nil {
				failed.Add(1) // or log it, or queue e for a retry
			}
			wg.Done()
		}, e)
		if err != nil { // refused before the hand-off (invalid event, closed backend): done will not run
			wg.Done()
			log.Fatal(err)
		}
	}
	wg.Wait() // before exiting, as Close waits only for the backend
	fmt.Println("failed:", failed.Load())
	// [/publish-many]
	// Output: failed: 0
}
