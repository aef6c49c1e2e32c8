package broker_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cosmic-horizons/events/broker"
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

// Dedupe is a hook of a subscription (or of a backend): a redelivered
// message whose event ID was handled already is acknowledged without
// calling the handler again. Pipeline is what every backend runs.
func ExampleDedupe() {
	store := broker.NewMemoryDedupeStore(10_000)
	handled := 0
	sub := broker.Subscription{Topic: "job-lifecycle", Group: "billing", Hooks: []broker.Hook{broker.Dedupe(store)}}
	h := broker.Pipeline{Subscription: sub}.Wrap(func(context.Context, *broker.Message) error {
		handled++
		return nil
	})

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
