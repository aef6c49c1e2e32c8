package broker

import (
	"context"

	"github.com/cosmic-horizons/events/eventmodels"
)

// HealthReport is what a backend's Health returns: an overall status, the
// checks behind it, and the lag of every consumer group it can see.
type HealthReport struct {
	// Backend names the backend: "memory", "kafka", "rabbitmq".
	Backend string
	// Status is the worst status of Checks.
	Status eventmodels.HealthStatus
	// Checks are the individual probes (brokers reachable, controller
	// known, topic present, connected node, …).
	Checks []eventmodels.HealthCheck
	// Lag is the backlog per group and partition (or queue).
	Lag []GroupLag
}

// GroupLag is how far a consumer group is behind on one partition or queue.
type GroupLag struct {
	Group     string
	Topic     string
	Partition int32 // -1 for a queue
	// Committed is the group's committed position (next offset to read);
	// -1 when unknown or for a queue.
	Committed int64
	// End is the partition's high-water mark; -1 for a queue.
	End int64
	// Lag is End − Committed for a partition, the ready message count for a
	// queue.
	Lag int64
	// Consumers is the number of consumers attached (queues), or members
	// of the group (partitions), when known; -1 when unknown.
	Consumers int
}

// HealthChecker is implemented by backends that can report their health.
type HealthChecker interface {
	Health(ctx context.Context) (*HealthReport, error)
}

// Worst returns the most severe of the statuses: unhealthy > degraded >
// unknown > healthy. A status that is none of these (empty, misspelt)
// counts as unknown. No statuses is healthy.
func Worst(statuses ...eventmodels.HealthStatus) eventmodels.HealthStatus {
	rank := func(s eventmodels.HealthStatus) int {
		switch s {
		case eventmodels.HealthHealthy:
			return 0
		case eventmodels.HealthDegraded:
			return 2
		case eventmodels.HealthUnhealthy:
			return 3
		}
		return 1 // unknown, or not a status
	}
	worst := eventmodels.HealthHealthy
	for _, s := range statuses {
		if !s.Valid() {
			s = eventmodels.HealthUnknown
		}
		if rank(s) > rank(worst) {
			worst = s
		}
	}
	return worst
}

// TotalLag sums the lag of group over topic (every partition).
func (r *HealthReport) TotalLag(group, topic string) int64 {
	var n int64
	for _, l := range r.Lag {
		if l.Group == group && l.Topic == topic {
			n += l.Lag
		}
	}
	return n
}
