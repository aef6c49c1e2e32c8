package kafkabus

import (
	"context"
	"time"
	"unsafe"

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
	headers       *headerCache
}

// newClaim opens a partition of the runtime; mark records a committable
// offset (sarama session MarkOffset), nil for ephemeral subscriptions.
func (s *subscription) newClaim(topic string, partition int32, mark func(offset int64)) *claim {
	c := &claim{s: s, topic: topic, partition: partition, redeliverUpTo: s.handedOutBefore(partition), headers: newHeaderCache()}
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
		batch := append(dispatch.NewBatch(), nil)
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
	d := c.dp.NewDelivery()
	d.Pos = cm.Offset
	fillMessage(&d.Message, cm, at, c.headers)
	d.Message.Delivery.Redelivered = cm.Offset <= c.redeliverUpTo
	d.Message.Delivery.Group = c.s.sub.Group
	return d
}

// fillMessage converts a consumed record into m (reusing the capacity of
// its Headers): topic, key, body, headers, and a Delivery with the
// partition, the offset, Attempt 1 and ReceivedAt at (not redelivered, no
// group). Header names, and the values of headers that repeat from message
// to message (event type, source, content type, schema), come from hc,
// which the reading goroutine keeps: a message allocates only the values
// that differ, whatever its event type, in one block with its key.
func fillMessage(m *broker.Message, cm *sarama.ConsumerMessage, at time.Time, hc *headerCache) {
	m.Topic = cm.Topic
	m.Body = cm.Value
	m.Delivery = broker.Delivery{Partition: cm.Partition, Offset: cm.Offset, Attempt: 1, ReceivedAt: at}
	// One block for the key and the values that differ per message.
	size := len(cm.Key)
	for i, h := range cm.Headers {
		if h != nil && !repeats(hc.name(i, h.Key)) {
			size += len(h.Value)
		}
	}
	var block []byte
	if size > 0 {
		block = make([]byte, 0, size)
	}
	m.Key = carve(&block, cm.Key)
	m.Headers = m.Headers[:0]
	for i, h := range cm.Headers {
		if h == nil {
			continue
		}
		name := hc.names[i]
		if repeats(name) {
			m.Headers = append(m.Headers, broker.Header{Key: name, Value: hc.value(i, h.Value)})
		} else {
			m.Headers = append(m.Headers, broker.Header{Key: name, Value: carve(&block, h.Value)})
		}
	}
}

// carve appends b to block, whose capacity was sized for it, and returns
// the appended bytes as a string sharing block's memory. block is never
// written again, so the string is immutable.
func carve(block *[]byte, b []byte) string {
	if len(b) == 0 {
		return ""
	}
	start := len(*block)
	*block = append(*block, b...)
	return unsafe.String(&(*block)[start], len(b))
}

// headerCache remembers, per header position, the names and repeating
// values of the last message read: consecutive messages of a topic carry
// the same headers in the same order, so most lookups are one comparison.
// Misses go to bounded interning maps. One reading goroutine owns it.
type headerCache struct {
	names, values []string
	nameMap       interner
	valueMap      interner
}

func newHeaderCache() *headerCache {
	hc := &headerCache{}
	hc.nameMap.init()
	hc.valueMap.init()
	return hc
}

// name returns header i's name as a string, remembering it.
func (hc *headerCache) name(i int, b []byte) string {
	for len(hc.names) <= i {
		hc.names = append(hc.names, "")
		hc.values = append(hc.values, "")
	}
	if hc.names[i] == string(b) { // the conversion does not allocate
		return hc.names[i]
	}
	s := hc.nameMap.intern(b)
	hc.names[i] = s
	return s
}

// value returns header i's (repeating) value as a string.
func (hc *headerCache) value(i int, b []byte) string {
	if hc.values[i] == string(b) {
		return hc.values[i]
	}
	s := hc.valueMap.intern(b)
	hc.values[i] = s
	return s
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
