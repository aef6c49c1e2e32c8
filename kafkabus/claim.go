package kafkabus

import (
	"context"
	"time"

	"github.com/IBM/sarama"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/dispatch"
)

// maxBatch bounds the messages a claim hands to the runtime at once.
const maxBatch = 64

// claim is one partition being consumed by a subscription: from a consumer
// group session (group subscriptions) or from a partition consumer
// (ephemeral ones). It converts the partition's records and hands them to
// the runtime in batches of what is already waiting.
type claim struct {
	s         *subscription
	topic     string
	partition int32
	dp        *dispatch.Partition
	// redeliverUpTo: offsets at or below it were handed out by this
	// process before (an earlier claim of the partition).
	redeliverUpTo int64
	names, values interner
}

// newClaim opens a partition of the runtime; mark records a committable
// offset (sarama session MarkOffset), nil for ephemeral subscriptions.
func (s *subscription) newClaim(topic string, partition int32, mark func(offset int64)) *claim {
	c := &claim{s: s, topic: topic, partition: partition, redeliverUpTo: s.handedOutBefore(partition)}
	c.names.init()
	c.values.init()
	c.dp = s.Open(dispatch.PartitionConfig{Commit: mark})
	return c
}

// run hands the claim's messages to the runtime until stop is closed, msgs
// is closed or the subscription stops, then drains: the runtime waits for
// the handed-out messages (bounded by drainTimeout and its grace) and
// commits the finished prefix; run records what may be redelivered.
func (c *claim) run(stop <-chan struct{}, msgs <-chan *sarama.ConsumerMessage) {
	s := c.s
	defer func() {
		rel := c.dp.Close(s.drainTimeout())
		s.recordHandedOut(c.partition, rel.LastHandedOut)
		s.log.Debug("kafkabus: partition released", "partition", c.partition,
			"committed", rel.Committed, "last_handed_out", rel.LastHandedOut, "abandoned", rel.Abandoned)
	}()
	// A revoke must also reach a Deliver waiting for room.
	unwatch := context.AfterFunc(s.runCtx, c.dp.Stop)
	defer unwatch()
	go func() {
		select {
		case <-stop:
			c.dp.Stop()
		case <-c.dp.Closing():
		}
	}()
	closing := c.dp.Closing()
	for {
		var cm *sarama.ConsumerMessage
		var ok bool
		select {
		case cm, ok = <-msgs:
		case <-closing:
			return
		}
		if !ok {
			return
		}
		batch := make([]*dispatch.Delivery, 1, maxBatch)
		now := time.Now()
		batch[0] = c.delivery(cm, now)
	more: // the messages already waiting join the batch
		for len(batch) < maxBatch {
			select {
			case cm, ok = <-msgs:
				if !ok {
					break more
				}
				batch = append(batch, c.delivery(cm, now))
			default:
				break more
			}
		}
		if n := c.dp.Deliver(batch); n < len(batch) {
			return
		}
		if !ok {
			return
		}
	}
}

// delivery converts a consumed record.
func (c *claim) delivery(cm *sarama.ConsumerMessage, at time.Time) *dispatch.Delivery {
	d := &dispatch.Delivery{Pos: cm.Offset}
	fillMessage(&d.Message, cm, at, &c.names, &c.values)
	d.Message.Delivery.Redelivered = cm.Offset <= c.redeliverUpTo
	d.Message.Delivery.Group = c.s.sub.Group
	return d
}

// fillMessage converts a consumed record into a broker.Message: topic,
// key, body, headers, and a Delivery with the partition, the offset,
// Attempt 1 and ReceivedAt at (not redelivered, no group). Header names,
// and the values of headers that repeat from message to message (event
// type, source, content type, schema), are interned in names and values
// (one pair per reading goroutine): a message allocates only the values
// that differ, whatever its event type.
func fillMessage(m *broker.Message, cm *sarama.ConsumerMessage, at time.Time, names, values *interner) {
	m.Topic = cm.Topic
	m.Key = string(cm.Key)
	m.Body = cm.Value
	if len(cm.Headers) > 0 {
		m.Headers = make(map[string]string, len(cm.Headers))
		for _, h := range cm.Headers {
			if h == nil {
				continue
			}
			name := names.intern(h.Key)
			if repeats(name) {
				m.Headers[name] = values.intern(h.Value)
			} else {
				m.Headers[name] = string(h.Value)
			}
		}
	}
	m.Delivery = broker.Delivery{Partition: cm.Partition, Offset: cm.Offset, Attempt: 1, ReceivedAt: at}
}

// repeats reports whether a header's values repeat from message to
// message, so that interning them pays.
func repeats(name string) bool {
	switch name {
	case broker.HeaderSpecVersion, broker.HeaderType, broker.HeaderSource, broker.HeaderContentType,
		broker.HeaderDataSchema, broker.HeaderDLQTopic, broker.HeaderDLQGroup:
		return true
	}
	return false
}

// interner returns the same string for equal byte slices, allocating only
// the first time, up to a bound (beyond it, strings are copied).
type interner struct{ m map[string]string }

const maxInterned = 256

func (in *interner) init() { in.m = make(map[string]string, 16) }

func (in *interner) intern(b []byte) string {
	if s, ok := in.m[string(b)]; ok { // the conversion does not allocate
		return s
	}
	s := string(b)
	if len(in.m) < maxInterned && len(b) <= 256 {
		in.m[s] = s
	}
	return s
}
