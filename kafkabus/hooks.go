package kafkabus

import "github.com/cosmic-horizons/events/broker"

// HookClientError is a broker.Hook (pass it in Config.Hooks) told of the
// errors the Kafka client meets in the background and retries or recovers
// from on its own: fetch and offset-commit failures, lost group
// membership, rebalance and heartbeat errors. They are also logged. group
// is the subscription's group ("" for ephemeral subscriptions); partition
// is -1 when the error concerns no single partition. Implementations must
// be safe for concurrent use and must not block.
type HookClientError interface {
	OnClientError(group, topic string, partition int32, err error)
}

func notifyClientError(hooks []broker.Hook, group, topic string, partition int32, err error) {
	for _, h := range hooks {
		if x, ok := h.(HookClientError); ok {
			x.OnClientError(group, topic, partition, err)
		}
	}
}

// HookRebalance is a broker.Hook (pass it in Config.Hooks) told each time
// a group subscription of this process gets a new assignment: a
// rebalance (the first assignment included). partitions are the ones
// assigned to this member on topic. Implementations must be safe for
// concurrent use and must not block. otelevents.Metrics implements it
// (events.rebalances).
type HookRebalance interface {
	OnRebalance(group, topic string, generation int32, partitions []int32)
}

func notifyRebalance(hooks []broker.Hook, group, topic string, generation int32, partitions []int32) {
	for _, h := range hooks {
		if x, ok := h.(HookRebalance); ok {
			x.OnRebalance(group, topic, generation, partitions)
		}
	}
}

func isClientErrorHook(h broker.Hook) bool {
	switch h.(type) {
	case HookClientError, HookRebalance:
		return true
	}
	return false
}
