package kafkabus_test

import (
	"context"
	"testing"

	"go.uber.org/goleak"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// TestCloseLeavesNoGoroutines publishes, consumes through a group and an
// ephemeral subscription, dead-letters, checks health, then closes the
// backend and the cluster: no goroutine of kafkabus or sarama is left.
//
// Ignored: go-metrics' meter arbiter, a process-wide ticker goroutine that
// sarama's metrics start on first use and that never exits by design (it
// belongs to the github.com/rcrowley/go-metrics package, not to a client).
func TestCloseLeavesNoGoroutines(t *testing.T) {
	opts := []goleak.Option{goleak.IgnoreCurrent(), goleak.IgnoreTopFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick")}
	cluster := kafkatest.NewCluster(t)
	b := newBackend(t, cluster)
	topic := newTopic(t, b, "leak", 3)
	got := newCollect()
	live := newCollect()
	failing := func(ctx context.Context, m *broker.Message) error {
		if m.Key == "poison" {
			return broker.Permanent(context.DeadlineExceeded)
		}
		return got.handle(ctx, m)
	}
	if _, err := b.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: "leak-" + topic, Concurrency: 4}, failing); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Subscribe(context.Background(), broker.Subscription{Topic: topic, Ephemeral: true}, live.handle); err != nil {
		t.Fatal(err)
	}
	msgs := []*broker.Message{{Topic: topic, Key: "a", Body: []byte("1")}, {Topic: topic, Key: "poison"}, {Topic: topic, Key: "b"}}
	if err := b.Publish(context.Background(), msgs...); err != nil {
		t.Fatal(err)
	}
	got.wait(t, 2)
	live.wait(t, 3)
	if _, err := b.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	cluster.Close()
	goleak.VerifyNone(t, opts...)
}
