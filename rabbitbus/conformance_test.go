package rabbitbus_test

import (
	"context"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/brokertest"
	"github.com/cosmic-horizons/events/rabbitbus"
	"github.com/cosmic-horizons/events/testkit/rabbittest"
)

// TestConformance runs the broker contract's conformance suite against the
// local RabbitMQ server with durable quorum queues. AMQP keeps messages only
// for groups that exist (a group is a queue), so the suite declares a group
// with Client.DeclareGroup before it publishes for it (Features.NewGroup).
func TestConformance(t *testing.T) {
	url := rabbittest.URL(t)
	cfg := rabbitbus.Config{URLs: []string{url}, Logger: testLogger(t)}
	admin := newClient(t, cfg)
	brokertest.Run(t, func(t *testing.T) brokertest.Backend {
		c := newClient(t, cfg)
		return brokertest.Backend{
			Publisher:  c,
			Subscriber: c,
			NewSubscriber: func(t *testing.T) broker.Subscriber {
				s, err := rabbitbus.NewSubscriber(context.Background(), cfg)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = s.Close() })
				return s
			},
			Health: c,
		}
	}, brokertest.Features{
		Persistent:      true,
		ConsumerGroups:  true,
		KeyAffinity:     false,
		Ephemeral:       true,
		MaxMessageBytes: rabbitbus.DefaultMaxMessageBytes,
		PublishForeign:  func(t *testing.T, m *broker.Message) { publishForeign(t, url, m) },
		NewGroup: func(t *testing.T, topic, group string) {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			if err := admin.DeclareGroup(ctx, broker.Subscription{Topic: topic, Group: group}); err != nil {
				t.Fatalf("DeclareGroup(%s/%s): %v", topic, group, err)
			}
		},
		Cleanup: func(t *testing.T, topics, groups []string) {
			deleteTopology(t, admin, topics, groups)
		},
		Timeout: 30 * time.Second,
	})
}
