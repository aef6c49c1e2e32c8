package rabbitbus

import (
	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/cosmic-horizons/events/broker"
)

// Wire conversions for tools that talk AMQP directly (cmd/evctl reads
// dead-letter queues with basic.get and puts messages back on a group's
// queue through the default exchange) yet must read and write messages
// exactly as this package does.

// MessageFromDelivery returns the broker.Message of an AMQP delivery
// consumed from topic, mapped back from the wire as a rabbitbus consumer
// maps it (headers, key, content type; this package's internal headers
// stripped), and whether the delivery may have been handled before.
func MessageFromDelivery(d *amqp.Delivery, topic string) (m *broker.Message, redelivered bool) {
	m = &broker.Message{}
	redelivered = fromDelivery(m, d, topic)
	return m, redelivered
}

// PublishingOf returns the routing key (the event type) and the AMQP
// message of m, as Publish sends it, or an error matching
// broker.ErrInvalidMessage when a header name would not survive the trip.
func PublishingOf(m *broker.Message) (routingKey string, p amqp.Publishing, err error) {
	if err := checkHeaders(m); err != nil {
		return "", amqp.Publishing{}, err
	}
	routingKey, p = toPublishing(m)
	return routingKey, p, nil
}

// DeclareTopic declares the exchanges of topic as Publish does (a durable
// topic exchange with its alternate exchange "<topic>.unmatched"). It
// fails, closing ch, when an exchange exists with other arguments.
func DeclareTopic(ch *amqp.Channel, topic string) error {
	if err := checkTopic(topic); err != nil {
		return &TopologyError{Kind: "exchange", Name: topic, Err: err}
	}
	return declareExchange(ch, topic)
}

// GroupDeadLetterQueue returns the dead-letter queue of a durable group's
// queue ("<queue>.dlq"), where its dead letters are kept.
func GroupDeadLetterQueue(queue string) string { return queue + suffixDLQ }
