package kafkabus_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// TestPublishErrors covers what Publish reports besides success: a missing
// topic is unroutable and named in a *broker.PublishError (the other
// messages of the call are confirmed), a message without a topic is invalid
// and nothing is sent, and a ctx that ends while the broker holds the
// request returns ctx's error.
func TestPublishErrors(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	b := newBackend(t, cluster)
	topic := newTopic(t, b, "puberr", 2)
	ctx := context.Background()

	err := b.Publish(ctx, &broker.Message{Topic: topic, Key: "a"}, &broker.Message{Topic: "no-such-topic", Key: "b"})
	var pe *broker.PublishError
	if !errors.As(err, &pe) || len(pe.Failed) != 1 || pe.Failed[0].Index != 1 || !errors.Is(err, broker.ErrUnroutable) {
		t.Fatalf("Publish to a missing topic = %v, want a PublishError naming message #1 as unroutable", err)
	}
	t.Logf("missing topic: %v", err)
	if n := len(readAll(t, cluster, topic)); n != 1 {
		t.Fatalf("%d messages on %s, want the 1 confirmed", n, topic)
	}

	if err := b.Publish(ctx, &broker.Message{Topic: topic, Key: "c"}, &broker.Message{Key: "no topic"}); !errors.Is(err, broker.ErrInvalidMessage) {
		t.Fatalf("Publish without a topic = %v, want ErrInvalidMessage", err)
	}
	if n := len(readAll(t, cluster, topic)); n != 1 {
		t.Fatalf("%d messages on %s after an invalid call, want nothing sent", n, topic)
	}

	slow := cluster.Delay(kmsg.Produce, 2*time.Second, 1)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	if err := b.Publish(short, &broker.Message{Topic: topic, Key: "d"}); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish with a 200ms ctx against a 2s broker = %v, want DeadlineExceeded", err)
	}
	if slow.Hits() != 1 {
		t.Errorf("the delay fault was hit %d times", slow.Hits())
	}
}

// TestSubscribeMissingTopic fails at Subscribe, not later in a goroutine.
func TestSubscribeMissingTopic(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	b := newBackend(t, cluster)
	for _, sub := range []broker.Subscription{{Topic: "absent", Group: "g"}, {Topic: "absent", Ephemeral: true}} {
		c, err := b.Subscribe(context.Background(), sub, func(context.Context, *broker.Message) error { return nil })
		if err == nil {
			_ = c.Close()
			t.Errorf("Subscribe(%+v) to a missing topic succeeded", sub)
			continue
		}
		t.Logf("Subscribe(ephemeral=%v): %v", sub.Ephemeral, err)
	}
}
