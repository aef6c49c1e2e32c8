package memory

import (
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/dispatch"
)

// fetchBatch bounds the entries a reader copies out of its partition in
// one lock.
const fetchBatch = 256

// assignment is a partition a member owns for its group. A reader
// goroutine copies its messages out of the log and hands them to the
// member's runtime (a dispatch.Partition), which commits the finished
// prefix as the group's offset. The run loop decides when it ends (dp.Stop)
// and releases it once the reader is done.
type assignment struct {
	c    *consumer
	cur  *cursor
	part *partition
	dp   *dispatch.Partition

	pos            int64 // next offset to read; the reader's
	redeliverBelow int64 // offsets below were handed out before this ownership
	wakeCh         chan struct{}
	done           chan struct{} // closed when the reader drained and closed dp
	rel            dispatch.Released
}

// wake tells the reader that its partition has new messages; never blocks.
func (a *assignment) wake() {
	select {
	case a.wakeCh <- struct{}{}:
	default:
	}
}

// read is the assignment's reader: it hands the partition's messages to
// the runtime until the assignment is revoked or the subscription stops,
// then drains them (dispatch.Partition.Close) and pokes the run loop.
func (a *assignment) read() {
	c := a.c
	defer func() {
		a.rel = a.dp.Close(c.sub.DrainTimeout)
		close(a.done)
		c.poke()
	}()
	stopping := c.rt.Stopping()
	var buf []entry
	for {
		a.part.mu.Lock()
		buf = a.part.read(a.pos, fetchBatch, buf[:0])
		a.part.mu.Unlock()
		if len(buf) > 0 {
			ds := dispatch.NewBatch()
			at := time.Now()
			for i := range buf {
				ds = append(ds, a.delivery(&buf[i], a.pos+int64(i), at))
			}
			clear(buf)
			n := a.dp.Deliver(ds)
			a.pos += int64(n)
			if n < len(ds) {
				return
			}
			continue
		}
		select {
		case <-a.wakeCh:
		case <-a.dp.Closing():
			return
		case <-stopping:
			return
		}
	}
}

// delivery builds the group delivery of entry e at offset off.
func (a *assignment) delivery(e *entry, off int64, at time.Time) *dispatch.Delivery {
	d := a.dp.NewDelivery()
	d.Pos = off
	e.fill(&d.Message, a.c.t.name, a.part.id, off, at)
	d.Message.Delivery.Redelivered = off < a.redeliverBelow
	d.Message.Delivery.Group = a.c.g.name
	return d
}

// message converts the entry at offset off of a partition into a fresh
// message with its own Headers map: Delivery has the partition, the offset,
// Attempt 1 and ReceivedAt at, and no group.
func (e *entry) message(topic string, partition int32, off int64, at time.Time) *broker.Message {
	m := &broker.Message{}
	e.fill(m, topic, partition, off, at)
	return m
}

// fill fills m with the entry, reusing the capacity of m.Headers.
func (e *entry) fill(m *broker.Message, topic string, partition int32, off int64, at time.Time) {
	h := append(m.Headers[:0], e.headers...)
	*m = broker.Message{
		Topic: topic, Key: e.key, Headers: h, Body: e.body,
		Delivery: broker.Delivery{Partition: partition, Offset: off, Attempt: 1, ReceivedAt: at},
	}
}
