package memory_test

import (
	"testing"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/brokertest"
	"github.com/cosmic-horizons/events/broker/memory"
)

// TestConformance runs the broker contract's conformance suite against the
// memory backend. Another subscriber "on the same broker" is the broker
// itself: every Subscribe call is a separate group member.
func TestConformance(t *testing.T) {
	brokertest.Run(t, func(t *testing.T) brokertest.Backend {
		b := mustNew(t, memory.Config{})
		t.Cleanup(func() { _ = b.Close() })
		return brokertest.Backend{
			Publisher:     b,
			Subscriber:    b,
			NewSubscriber: func(*testing.T) broker.Subscriber { return b },
			Health:        b,
		}
	}, brokertest.Features{
		Persistent:      true,
		ConsumerGroups:  true,
		AsyncOrdered:    true,
		Ephemeral:       true,
		MaxMessageBytes: memory.DefaultMaxMessageBytes,
	})
}
