package kafkabus_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/kafkabus"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// TestDeadLetterRefusedForGood: when the dead-letter topic does not exist
// (unroutable, which retrying cannot fix), the dead letter is not retried
// for ever: by default the subscription stops with a *DeadLetterError and
// the message stays uncommitted; with FallbackDiscard consumption goes on.
func TestDeadLetterRefusedForGood(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	for _, fb := range []broker.DeadLetterFallback{broker.FallbackStop, broker.FallbackDiscard} {
		t.Run(fb.String(), func(t *testing.T) {
			b := newBackend(t, cluster)
			topic := fmt.Sprintf("no-dlq-%s-%d", fb, time.Now().UnixNano())
			ensure(t, b, topic, 1) // and no "<topic>.dlq"
			got := newCollect()
			h := func(ctx context.Context, m *broker.Message) error {
				if string(m.Body) == "poison" {
					return errors.New("cannot handle")
				}
				return got.handle(ctx, m)
			}
			c, err := b.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: "g",
				Retry: broker.RetryPolicy{MaxAttempts: 1}, DeadLetterFallback: fb}, h)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
			defer cancel()
			if err := b.Publish(ctx, &broker.Message{Topic: topic, Key: "k", Body: []byte("poison")},
				&broker.Message{Topic: topic, Key: "k", Body: []byte("next")}); err != nil {
				t.Fatal(err)
			}
			switch fb {
			case broker.FallbackStop:
				select {
				case <-c.Done():
				case <-ctx.Done():
					t.Fatal("the subscription neither stopped nor moved on")
				}
				var he *broker.HandlerError
				var dle *broker.DeadLetterError
				if !errors.As(c.Err(), &he) || !errors.As(c.Err(), &dle) || !errors.Is(c.Err(), broker.ErrUnroutable) {
					t.Fatalf("Err() = %v, want a *HandlerError around an unroutable *DeadLetterError", c.Err())
				}
				if he.Offset != 0 {
					t.Fatalf("stopped at offset %d, want 0 (the poison message)", he.Offset)
				}
				lag := groupLag(t, b, "g", topic)
				if lag != 2 {
					t.Fatalf("group lag %d, want 2: nothing committed past the poison message", lag)
				}
			case broker.FallbackDiscard:
				msgs := got.wait(t, 1)
				if string(msgs[0].Body) != "next" {
					t.Fatalf("handled %q, want next", msgs[0].Body)
				}
			}
		})
	}
}

// groupLag reads the group's total lag on topic from Health once the
// subscription stopped (its offsets committed).
func groupLag(t *testing.T, b *kafkabus.Backend, group, topic string) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	r, err := b.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range r.Lag {
		if l.Group == group && l.Topic == topic {
			return r.TotalLag(group, topic)
		}
	}
	t.Fatalf("no lag of %s on %s in %+v", group, topic, r.Lag)
	return -1
}

// TestDeadLetterTopicProvisionedLarger: EnsureTopics gives "<topic>.dlq"
// a max.message.bytes that holds the dead letter of a message at the size
// limit.
func TestDeadLetterTopicProvisionedLarger(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	b := newBackend(t, cluster)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	rep, err := b.Admin().EnsureTopics(ctx, []broker.TopicSpec{{Name: "orders", Partitions: 2}}, kafkabus.WithDeadLetterTopics())
	if err != nil || len(rep.Created) != 2 {
		t.Fatalf("EnsureTopics: %+v, %v", rep, err)
	}
	got := topicConfig(t, cluster, "orders.dlq", "max.message.bytes")
	want := kafkabus.DeadLetterMaxMessageBytes(kafkabus.DefaultMaxMessageBytes)
	if got != strconv.Itoa(want) {
		t.Fatalf("orders.dlq max.message.bytes = %q, want %d", got, want)
	}
	if got := topicConfig(t, cluster, "orders", "max.message.bytes"); got == strconv.Itoa(want) {
		t.Fatalf("orders got the dead-letter size too")
	}
}
