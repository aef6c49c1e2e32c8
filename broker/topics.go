package broker

import (
	"strings"
	"time"
)

// TopicSpec describes a durable topic: what backends provision and what
// drift checks compare against.
type TopicSpec struct {
	Name       string
	Partitions int32
	// ReplicationFactor is 3 on the platform's 3-broker clusters; backends
	// cap it at the number of brokers they see.
	ReplicationFactor int16
	Retention         time.Duration
	// MaxMessageBytes is the largest record the topic takes (Kafka
	// max.message.bytes); 0 leaves the broker's default, except for
	// dead-letter topics, which backends size to hold the dead letter of
	// any message they accept.
	MaxMessageBytes int
	// Carries lists the event types published to the topic.
	Carries []string
}

// DeadLetterSuffix is appended to a topic's name to form its dead-letter topic.
const DeadLetterSuffix = ".dlq"

// DeadLetterTopic returns the dead-letter topic of topic: "<topic>.dlq".
func DeadLetterTopic(topic string) string { return topic + DeadLetterSuffix }

// IsDeadLetterTopic reports whether topic is named as a dead-letter topic
// ("<topic>.dlq").
func IsDeadLetterTopic(topic string) bool { return strings.HasSuffix(topic, DeadLetterSuffix) }
