package broker

import (
	"time"
)

// Message is one message on a topic: what a Publisher sends and what a
// Handler receives.
type Message struct {
	// Topic the message is published to or was consumed from.
	Topic string
	// Key orders and partitions: messages with the same key are delivered
	// in publish order. Empty keys spread over partitions with no order
	// between them.
	Key string
	// Headers carry metadata as strings (CloudEvents attributes, trace
	// context, dead-letter details). Names are case-sensitive.
	Headers Headers
	// Body is the encoded payload. Backends never modify it.
	Body []byte

	// Delivery is filled by subscribers; publishers ignore it.
	Delivery Delivery
}

// Delivery describes how a message reached a handler.
type Delivery struct {
	// Partition and Offset locate the message in a partitioned log
	// (memory, Kafka); -1 when the backend has none.
	Partition int32
	Offset    int64
	// Tag is the AMQP delivery tag (rabbitbus); 0 elsewhere.
	Tag uint64
	// Attempt counts handler calls for this delivery, from 1. The Retry
	// middleware increments it before each new attempt.
	Attempt int
	// Redelivered is true when the broker delivered the message before
	// (after a crash, a rebalance or a reconnect) and it may have been
	// handled already.
	Redelivered bool
	// ReceivedAt is when the subscriber took the message from the broker.
	ReceivedAt time.Time
	// Group is the subscription group the message was delivered to.
	Group string
	// Decoded caches what a decoder made of the Body (an events.Router
	// stores the event or its decoding error on the first attempt), so that
	// retries do not decode again: the Body of a delivery never changes.
	Decoded any
}

// Header returns the value of a header, or "" if absent.
func (m *Message) Header(key string) string { return m.Headers.Get(key) }

// SetHeader sets a header (see Headers.Set).
func (m *Message) SetHeader(key, value string) { m.Headers.Set(key, value) }

// Clone returns a copy of m whose Headers can be changed without affecting
// m. The body is shared: it is never modified in place. The clone does not
// keep Delivery.Decoded (its body may be changed).
func (m *Message) Clone() *Message {
	c := *m
	c.Headers = m.Headers.Clone()
	c.Delivery.Decoded = nil
	return &c
}

// Size is the number of bytes a backend counts against its message size
// limit: key, body, and header names and values.
func (m *Message) Size() int {
	n := len(m.Key) + len(m.Body)
	for _, h := range m.Headers {
		n += len(h.Key) + len(h.Value)
	}
	return n
}
