package kafkabus_test

import (
	"testing"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/brokertest"
	"github.com/cosmic-horizons/events/kafkabus"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// TestConformance runs the broker contract's suite against kafkabus on an
// in-process 3-broker cluster, topics provisioned through Admin.
func TestConformance(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	admin := newBackend(t, cluster)
	brokertest.Run(t, func(t *testing.T) brokertest.Backend {
		b := newBackend(t, cluster)
		return brokertest.Backend{
			Publisher:  b,
			Subscriber: b,
			NewSubscriber: func(t *testing.T) broker.Subscriber {
				return newBackend(t, cluster)
			},
			Health: b,
		}
	}, brokertest.Features{
		Persistent:      true,
		ConsumerGroups:  true,
		KeyAffinity:     true,
		AsyncOrdered:    true,
		Ephemeral:       true,
		MaxMessageBytes: kafkabus.DefaultMaxMessageBytes,
		NewTopic: func(t *testing.T, name string, partitions int32) {
			ensure(t, admin, name, partitions)
		},
	})
}
