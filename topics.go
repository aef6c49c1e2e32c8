package events

import (
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
)

const day = 24 * time.Hour

// PlatformTopics returns the durable topics of the Cosmic Horizons
// platform, with the partitions and retention backends provision them with
// (kafkabus.Admin.EnsureTopics, memory.Config.Topics) and the event types
// each carries. The slice is a fresh copy on every call.
func PlatformTopics() []broker.TopicSpec {
	return []broker.TopicSpec{
		{Name: eventmodels.TopicJobLifecycle, Partitions: 10, ReplicationFactor: 3, Retention: 30 * day, Carries: []string{
			eventmodels.TypeJobSubmitted, eventmodels.TypeJobQueued, eventmodels.TypeJobStatusChanged,
			eventmodels.TypeJobCompleted, eventmodels.TypeJobFailed, eventmodels.TypeJobCancelled}},
		{Name: eventmodels.TopicJobMetrics, Partitions: 10, ReplicationFactor: 3, Retention: 30 * day, Carries: []string{eventmodels.TypeJobMetrics}},
		{Name: eventmodels.TopicNotifications, Partitions: 5, ReplicationFactor: 3, Retention: 7 * day, Carries: []string{eventmodels.TypeNotification}},
		{Name: eventmodels.TopicAuditTrail, Partitions: 5, ReplicationFactor: 3, Retention: 90 * day, Carries: []string{eventmodels.TypeAudit}},
		{Name: eventmodels.TopicSystemHealth, Partitions: 3, ReplicationFactor: 3, Retention: 7 * day, Carries: []string{eventmodels.TypeSystemHealth}},
	}
}
