package memory_test

import (
	"context"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"go.uber.org/goleak"
)

// TestNoGoroutineOutlivesClose runs every kind of consumer, a handler stuck
// past its drain bound, a rebalance, and a publisher waiting for room, then
// checks that Close leaves no goroutine behind.
func TestNoGoroutineOutlivesClose(t *testing.T) {
	defer goleak.VerifyNone(t)
	b := mustNew(t, memory.Config{DefaultPartitions: 2, BufferSize: 8})
	ctx := context.Background()
	nop := func(context.Context, *broker.Message) error { return nil }
	stuck := func(ctx context.Context, _ *broker.Message) error { <-ctx.Done(); return ctx.Err() }
	for _, sub := range []broker.Subscription{
		{Topic: "a", Group: "one"},
		{Topic: "a", Group: "one", Concurrency: 8},
		{Topic: "a", Group: "two", Concurrency: 3},
		{Topic: "a", Ephemeral: true},
	} {
		if _, err := b.Subscribe(ctx, sub, nop); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := b.Subscribe(ctx, broker.Subscription{Topic: "b", Group: "stuck", Concurrency: 2, DrainTimeout: 5 * time.Millisecond}, stuck); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 100; i += 10 {
		if err := b.Publish(ctx, makeMsgs("a", i, 10, 3)...); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Publish(ctx, makeMsgs("b", 0, 16, 2)...); err != nil {
		t.Fatal(err)
	}
	waiting := make(chan error, 1)
	go func() { waiting <- b.Publish(ctx, makeMsgs("b", 16, 1, 2)...) }() // "b" is full: waits
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	<-waiting
}
