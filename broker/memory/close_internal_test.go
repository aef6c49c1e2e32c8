package memory

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

// TestCloseReleasesPublisherWaitingForRoom: a Publish that is waiting for
// room in a full partition (checked, not assumed: the partition has a
// waiter) returns when the broker closes, with a *broker.PublishError
// matching broker.ErrClosed that names only the message that waited (the
// one before it was appended), and Close returns at once: nothing but the
// drained consumers bounds it.
func TestCloseReleasesPublisherWaitingForRoom(t *testing.T) {
	const bound = 10 * time.Second
	b, err := New(context.Background(), Config{DefaultPartitions: 1, BufferSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	c, err := b.Subscribe(ctx, broker.Subscription{Topic: "w", Group: "g", StartAt: broker.StartNewest}, func(context.Context, *broker.Message) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	_ = c.Close() // the durable group stays registered, holding what it has not committed

	published := make(chan error, 1)
	go func() {
		published <- b.Publish(ctx, &broker.Message{Topic: "w", Key: "fits"}, &broker.Message{Topic: "w", Key: "waits"})
	}()
	part := b.topic("w").parts[0]
	waiting := func() bool {
		part.mu.Lock()
		defer part.mu.Unlock()
		return part.room != nil
	}
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !waiting() {
		select {
		case <-tick.C:
		case err := <-published:
			t.Fatalf("Publish returned %v instead of waiting for room", err)
		case <-ctx.Done():
			t.Fatal("Publish never waited for room in the full partition")
		}
	}

	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- b.Close() }()
	select {
	case err := <-closed:
		if err != nil {
			t.Errorf("Close = %v", err)
		}
		t.Logf("Close returned after %v", time.Since(start))
	case <-ctx.Done():
		t.Fatalf("Close still blocked after %v with a publisher waiting for room", bound)
	}
	select {
	case err := <-published:
		var pe *broker.PublishError
		if !errors.Is(err, broker.ErrClosed) || !errors.As(err, &pe) || len(pe.Failed) != 1 || pe.Failed[0].Index != 1 {
			t.Fatalf("the waiting Publish = %v, want a *broker.PublishError naming message #1, matching broker.ErrClosed", err)
		}
	case <-ctx.Done():
		t.Fatal("the waiting Publish did not return after Close")
	}
}
