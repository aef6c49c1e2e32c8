package devkafka_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/examples/internal/devkafka"
	"github.com/cosmic-horizons/events/kafkabus"
)

// TestKafkabusTalksToIt: the platform's topics are created over the wire
// and a message published is consumed back, as on a real cluster.
func TestKafkabusTalksToIt(t *testing.T) {
	_, err := devkafka.Start(0)
	require.Error(t, err)
	c, err := devkafka.Start(3)
	require.NoError(t, err)
	defer c.Close()
	require.Len(t, c.Addrs(), 3)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := kafkabus.New(ctx, kafkabus.Config{Brokers: c.Addrs()})
	require.NoError(t, err)
	defer b.Close()
	_, err = b.Admin().EnsureTopics(ctx, events.PlatformTopics(), kafkabus.WithDeadLetterTopics())
	require.NoError(t, err)

	got := make(chan string, 1)
	cons, err := b.Subscribe(ctx, broker.Subscription{Topic: "job-lifecycle", Group: "g"}, func(_ context.Context, m *broker.Message) error {
		got <- string(m.Body)
		return nil
	})
	require.NoError(t, err)
	defer cons.Close()
	require.NoError(t, b.Publish(ctx, &broker.Message{Topic: "job-lifecycle", Key: "job-1", Body: []byte("hello")}))
	select {
	case body := <-got:
		require.Equal(t, "hello", body)
	case <-ctx.Done():
		t.Fatal("the message published was never consumed")
	}
}

// TestRemoveRestoreBroker: a removed broker leaves the metadata (kafkabus
// health counts 2 brokers), and comes back on its former port.
func TestRemoveRestoreBroker(t *testing.T) {
	c, err := devkafka.Start(3)
	require.NoError(t, err)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := kafkabus.New(ctx, kafkabus.Config{Brokers: c.Addrs()})
	require.NoError(t, err)
	defer b.Close()
	brokers := func() float64 {
		rep, err := b.Health(ctx)
		require.NoError(t, err)
		for _, ch := range rep.Checks {
			if ch.Name == "brokers" {
				return ch.Value
			}
		}
		t.Fatal("no brokers check")
		return 0
	}
	require.Equal(t, 3.0, brokers())
	require.Error(t, c.RestoreBroker(0), "restoring a broker that was not removed")
	require.Error(t, c.RemoveBroker(2), "removing the controller")
	require.NoError(t, c.RemoveBroker(0))
	require.Error(t, c.RemoveBroker(0), "removing it twice")
	require.Equal(t, 2.0, brokers())
	require.NoError(t, c.RestoreBroker(0))
	require.Equal(t, 3.0, brokers())
	// Every partition takes messages again: no client is left talking to
	// the removed broker over a connection it had accepted.
	_, err = b.Admin().EnsureTopics(ctx, events.PlatformTopics())
	require.NoError(t, err)
	for i := range 60 {
		require.NoError(t, b.Publish(ctx, &broker.Message{Topic: "job-lifecycle", Key: fmt.Sprintf("job-%d", i), Body: []byte("x")}))
	}
	require.Equal(t, 3, len(c.Addrs()))
}
