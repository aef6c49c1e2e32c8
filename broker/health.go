package broker

import (
	"context"
	"time"
)

// HealthStatus is the state of a backend or of one of its checks.
type HealthStatus string

// The health statuses, from best to worst: healthy, unknown, degraded,
// unhealthy (see Worst).
const (
	HealthHealthy   HealthStatus = "healthy"
	HealthDegraded  HealthStatus = "degraded"
	HealthUnhealthy HealthStatus = "unhealthy"
	HealthUnknown   HealthStatus = "unknown"
)

// Valid reports whether s is one of the defined statuses.
func (s HealthStatus) Valid() bool {
	switch s {
	case HealthHealthy, HealthDegraded, HealthUnhealthy, HealthUnknown:
		return true
	}
	return false
}

// HealthCheck is one probe of a backend's health.
type HealthCheck struct {
	Name    string       `json:"name"`
	Status  HealthStatus `json:"status"`
	Message string       `json:"message,omitempty"`
	// Value is the measured figure, e.g. lag in messages or brokers
	// answering.
	Value float64 `json:"value"`
}

// HealthReport is what a backend's Health returns: an overall status, the
// checks behind it, and the lag of every consumer group it can see.
type HealthReport struct {
	// Backend names the backend: "memory", "kafka", "rabbitmq".
	Backend string
	// Status is the worst status of Checks.
	Status HealthStatus
	// Checks are the individual probes (brokers reachable, controller
	// known, topic present, connected node, …).
	Checks []HealthCheck
	// Lag is the backlog per group and partition (or queue).
	Lag []GroupLag
	// InFlight is, per running subscription of this process, what its
	// handlers hold: messages handed out and not yet acknowledged. A
	// message that stays here long is a stuck consumer, which Lag alone
	// does not show (RabbitMQ counts an unacknowledged message as no lag).
	InFlight []InFlight
}

// InFlight is what one running subscription of this process holds.
type InFlight struct {
	Group string
	Topic string
	// Messages is the number of messages handed out (to handlers, or
	// waiting for a handler) and not yet acknowledged or committed.
	Messages int
	// OldestAge is how long the oldest of them has been held, since the
	// subscriber received it; 0 when Messages is 0.
	OldestAge time.Duration
}

// Stuck returns the subscriptions whose oldest message in flight has been
// held longer than threshold.
func (r *HealthReport) Stuck(threshold time.Duration) []InFlight {
	var out []InFlight
	for _, f := range r.InFlight {
		if f.Messages > 0 && f.OldestAge > threshold {
			out = append(out, f)
		}
	}
	return out
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
func Worst(statuses ...HealthStatus) HealthStatus {
	rank := func(s HealthStatus) int {
		switch s {
		case HealthHealthy:
			return 0
		case HealthDegraded:
			return 2
		case HealthUnhealthy:
			return 3
		}
		return 1 // unknown, or not a status
	}
	worst := HealthHealthy
	for _, s := range statuses {
		if !s.Valid() {
			s = HealthUnknown
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
