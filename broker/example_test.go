package broker_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
)

// A handler that fails twice is retried in place until it succeeds; one
// that returns a Permanent error is not retried at all.
func ExampleRetry() {
	policy := broker.RetryPolicy{MaxAttempts: 5, InitialBackoff: time.Millisecond}

	calls := 0
	flaky := func(ctx context.Context, m *broker.Message) error {
		calls++
		if calls < 3 {
			return errors.New("database busy")
		}
		return nil
	}
	err := broker.Chain(flaky, broker.Retry(policy), broker.Recover())(context.Background(), &broker.Message{Topic: "job-lifecycle"})
	fmt.Printf("flaky: %d calls, err %v\n", calls, err)

	calls = 0
	strict := func(ctx context.Context, m *broker.Message) error {
		calls++
		return broker.Permanent(fmt.Errorf("job %q: unknown queue", m.Key))
	}
	err = broker.Chain(strict, broker.Retry(policy), broker.Recover())(context.Background(), &broker.Message{Topic: "job-lifecycle", Key: "job-1"})
	fmt.Printf("strict: %d call, permanent %v: %v\n", calls, broker.IsPermanent(err), err)
	// Output:
	// flaky: 3 calls, err <nil>
	// strict: 1 call, permanent true: job "job-1": unknown queue
}

// discardPublisher confirms everything and keeps nothing.
type discardPublisher struct{}

func (discardPublisher) Publish(context.Context, ...*broker.Message) error { return nil }
func (discardPublisher) Close() error                                      { return nil }

// The message the Bus publishes for an event: its topic, key, and the
// CloudEvents headers. IDs are random, so only their presence is shown.
func ExampleBus_Message() {
	bus, err := broker.NewBus(discardPublisher{}, broker.WithSource("//cosmic-horizons/orchestrator"))
	if err != nil {
		panic(err)
	}
	clock := func() time.Time { return time.Date(2026, 3, 1, 12, 30, 45, 123_000_000, time.UTC) }
	e := eventmodels.NewJobQueued("astro-user-7", "job-000042", "gpu-large", 3, eventmodels.WithClock(clock))

	m, err := bus.Message(context.Background(), e)
	if err != nil {
		panic(err)
	}
	fmt.Println("topic:", m.Topic, "key:", m.Key)
	for _, k := range slices.Sorted(slices.Values(m.Headers.Keys())) {
		v := m.Headers.Get(k)
		if k == broker.HeaderID || k == broker.HeaderCorrelationID {
			v = "<uuid>"
		}
		fmt.Printf("%s: %s\n", k, v)
	}
	// Output:
	// topic: job-lifecycle key: job-000042
	// ce_correlationid: <uuid>
	// ce_dataschema: urn:cosmic-horizons:schema:job-lifecycle/v1
	// ce_id: <uuid>
	// ce_source: //cosmic-horizons/orchestrator
	// ce_specversion: 1.0
	// ce_subject: job-000042
	// ce_time: 2026-03-01T12:30:45.123Z
	// ce_type: job.queued
	// content-type: application/avro
}

// Dedupe wraps the handler given to Subscribe: a redelivered message whose
// event ID was handled already is acknowledged without calling it again.
func ExampleDedupe() {
	store := broker.NewMemoryDedupeStore(10_000)
	handled := 0
	h := broker.Chain(func(context.Context, *broker.Message) error {
		handled++
		return nil
	}, broker.Dedupe(store))

	m := &broker.Message{Topic: "job-lifecycle", Headers: broker.Headers{{Key: broker.HeaderID, Value: "0190f1c2-3b4a-7c5d-8e6f-000000000001"}}}
	for range 3 { // the broker delivers the same event three times
		if err := h(context.Background(), m); err != nil {
			panic(err)
		}
	}
	fmt.Println("handled:", handled)
	// Output:
	// handled: 1
}
