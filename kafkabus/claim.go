package kafkabus

import (
	"context"
	"hash/maphash"
	"sync/atomic"
	"time"

	"github.com/IBM/sarama"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
)

// drainGrace bounds how long a claim waits, after cancelling its handlers'
// ctx at the drain deadline, for handlers that ignore their ctx. Past it the
// claim lets the partition go; such a handler's late result is ignored (its
// message stays uncommitted).
const drainGrace = 5 * time.Second

// claim is one partition being consumed by a subscription: from a consumer
// group session (group subscriptions) or from a partition consumer
// (ephemeral ones).
type claim struct {
	sub       *subscription
	topic     string
	partition int32
	tr        *tracker
	// ctx is the ctx of this claim's handlers. It outlives a revoke or a
	// Close until the drain deadline, then it is cancelled.
	ctx    context.Context
	cancel context.CancelFunc
	// mark records a committable offset (sarama session MarkOffset); nil
	// for ephemeral subscriptions.
	mark func(offset int64)
	// redeliverUpTo: offsets at or below it were handed out by this
	// process before (an earlier claim of the partition).
	redeliverUpTo int64
	// aborted is set when the claim's queued messages must not be started:
	// a handler failed under OnFailureStop, or the drain deadline passed.
	// On a plain revoke or stop, messages already handed out still run.
	aborted atomic.Bool
}

func (s *subscription) newClaim(topic string, partition int32, mark func(int64)) *claim {
	ctx, cancel := context.WithCancel(s.handlerCtx)
	return &claim{
		sub: s, topic: topic, partition: partition,
		tr:  newTracker(s.sub.MaxInFlight),
		ctx: ctx, cancel: cancel, mark: mark,
		redeliverUpTo: s.handedOutBefore(partition),
	}
}

// delivery is one message handed to a worker.
type delivery struct {
	msg   broker.Message
	claim *claim
	seq   uint64
	slot  int32 // in the subscription's in-flight set
}

// run hands the claim's messages to the workers until stop is closed or
// msgs is closed, then drains: it waits for the handed-out messages to
// finish (bounded by drain(), then their ctx is cancelled), records what
// may be redelivered, and returns. Offsets are marked as messages finish.
func (c *claim) run(stop <-chan struct{}, msgs <-chan *sarama.ConsumerMessage) {
	s := c.sub
	defer c.finishRun()
	// Messages are handed to the workers in batches of what is already
	// waiting in msgs (never waiting for more): one channel operation and
	// one worker wake-up per batch instead of per message. Every delivery
	// added to the tracker is flushed to its worker before run returns or
	// blocks, so the workers can always free the in-flight slots it waits
	// for and the drain always sees them finish.
	pending := make([][]*delivery, len(s.queues))
	queued := 0
	flush := func() {
		if queued == 0 {
			return
		}
		for i, ds := range pending {
			if len(ds) > 0 {
				s.queues[i] <- ds
				pending[i] = nil // the worker owns the slice now
			}
		}
		queued = 0
	}
	defer flush()
	for {
		select {
		case <-stop:
			return
		default:
		}
		var cm *sarama.ConsumerMessage
		var ok bool
		select {
		case cm, ok = <-msgs: // one more is waiting: it joins the batch
		default:
			flush() // nothing waiting: hand out the batch, then wait
			select {
			case <-stop:
				return
			case cm, ok = <-msgs:
			}
		}
		if !ok {
			return
		}
		select {
		case s.inFlight <- struct{}{}:
		default:
			flush() // the workers need these to free slots
			select {
			case s.inFlight <- struct{}{}:
			case <-stop:
				return
			}
		}
		if c.aborted.Load() { // a handler failed under OnFailureStop
			<-s.inFlight
			return
		}
		d := &delivery{claim: c}
		c.fill(&d.msg, cm)
		d.seq = c.tr.add(cm.Offset)
		d.slot = s.held.Add(d.msg.Delivery.ReceivedAt)
		sh := s.shard(&d.msg)
		pending[sh] = append(pending[sh], d)
		if queued++; queued == maxBatch {
			flush()
		}
	}
}

// maxBatch bounds the messages a claim hands to the workers at once.
const maxBatch = 64

// fill converts a consumed record into the claim's broker.Message.
func (c *claim) fill(m *broker.Message, cm *sarama.ConsumerMessage) {
	fillMessage(m, cm)
	m.Delivery.Redelivered = cm.Offset <= c.redeliverUpTo
	m.Delivery.Group = c.sub.sub.Group
}

// fillMessage converts a consumed record into a broker.Message: topic, key,
// body, headers, and a Delivery with the partition, the offset, Attempt 1
// and ReceivedAt now (not redelivered, no group).
func fillMessage(m *broker.Message, cm *sarama.ConsumerMessage) {
	m.Topic = cm.Topic
	m.Key = string(cm.Key)
	m.Body = cm.Value
	if len(cm.Headers) > 0 {
		m.Headers = make(map[string]string, len(cm.Headers))
		for _, h := range cm.Headers {
			if h != nil {
				m.Headers[intern(h.Key)] = intern(h.Value)
			}
		}
	}
	m.Delivery = broker.Delivery{
		Partition:  cm.Partition,
		Offset:     cm.Offset,
		Attempt:    1,
		ReceivedAt: time.Now(),
	}
}

// finishRun drains the claim.
func (c *claim) finishRun() {
	c.tr.stop()
	wait := c.sub.drainTimeout()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-c.tr.idle:
	case <-t.C:
		c.aborted.Store(true)
		c.cancel()
		c.sub.log.Warn("kafkabus: drain timeout reached, cancelling in-flight handlers",
			"topic", c.topic, "partition", c.partition, "group", c.sub.sub.Group, "drain_timeout", wait)
		g := time.NewTimer(drainGrace)
		defer g.Stop()
		select {
		case <-c.tr.idle:
		case <-g.C:
			c.sub.stuck.Store(true)
			c.sub.log.Error("kafkabus: handlers ignore their ctx; releasing the partition without them",
				"topic", c.topic, "partition", c.partition, "group", c.sub.sub.Group)
		}
	}
	c.cancel()
	next, last := c.tr.committable()
	c.sub.recordHandedOut(c.partition, last)
	c.sub.log.Debug("kafkabus: partition released", "topic", c.topic, "partition", c.partition,
		"group", c.sub.sub.Group, "committable", next, "last_handed_out", last)
}

// resolve records the outcome of d and frees its in-flight slot.
func (c *claim) resolve(d *delivery, ok bool) {
	next, moved := c.tr.finish(d.seq, ok)
	if moved && c.mark != nil {
		c.mark(next)
	}
	c.sub.held.Done(d.slot)
	<-c.sub.inFlight
}

// worker runs the handler for every delivery of its queue, in order.
func (s *subscription) worker(q <-chan []*delivery) {
	defer s.workers.Done()
	for ds := range q {
		for _, d := range ds {
			s.handle(d)
		}
	}
}

// handle runs the handler for d and resolves it.
func (s *subscription) handle(d *delivery) {
	c := d.claim
	if c.aborted.Load() {
		c.resolve(d, false)
		return
	}
	err := s.handler(c.ctx, &d.msg)
	switch {
	case err == nil:
		c.resolve(d, true)
	case c.ctx.Err() != nil:
		// Stopping: the message stays uncommitted and comes back.
		c.resolve(d, false)
	default:
		// Only OnFailureStop lets a handler error through the pipeline.
		c.aborted.Store(true)
		s.fail(&broker.HandlerError{
			Topic: d.msg.Topic, Partition: d.msg.Delivery.Partition, Offset: d.msg.Delivery.Offset,
			Key: d.msg.Key, Attempts: max(d.msg.Delivery.Attempt, 1), Err: err,
		})
		c.resolve(d, false)
	}
}

// shard picks the worker of a message: by key, so one key is never handled
// concurrently and keeps its order; keyless messages by partition.
func (s *subscription) shard(m *broker.Message) int {
	if len(s.queues) == 1 {
		return 0
	}
	if m.Key == "" {
		return int(m.Delivery.Partition) % len(s.queues)
	}
	return int(maphash.String(s.seed, m.Key) % uint64(len(s.queues)))
}

// interned holds the header names the Bus writes and the few values that
// repeat verbatim (spec version, content types, the built-in event types),
// so that filling a consumed message allocates only the values that differ
// per message.
var interned = func() map[string]string {
	m := map[string]string{}
	for _, s := range []string{
		broker.HeaderSpecVersion, broker.HeaderID, broker.HeaderType, broker.HeaderSource, broker.HeaderTime,
		broker.HeaderSubject, broker.HeaderCorrelationID, broker.HeaderDataSchema, broker.HeaderContentType,
		broker.HeaderTraceParent, broker.HeaderTraceState,
		broker.HeaderDLQError, broker.HeaderDLQAttempts, broker.HeaderDLQTime, broker.HeaderDLQTopic,
		broker.HeaderDLQGroup, broker.HeaderDLQPartition, broker.HeaderDLQOffset, broker.HeaderDLQPermanent,
		broker.SpecVersion, eventmodels.ContentTypeAvro, eventmodels.ContentTypeJSON,
		eventmodels.TypeJobSubmitted, eventmodels.TypeJobQueued, eventmodels.TypeJobStatusChanged,
		eventmodels.TypeJobCompleted, eventmodels.TypeJobFailed, eventmodels.TypeJobCancelled,
		eventmodels.TypeJobMetrics, eventmodels.TypeNotification, eventmodels.TypeAudit, eventmodels.TypeSystemHealth,
	} {
		m[s] = s
	}
	return m
}()

// intern returns b as a string, without allocating when it is one of the
// interned strings.
func intern(b []byte) string {
	if s, ok := interned[string(b)]; ok { // the conversion does not allocate
		return s
	}
	return string(b)
}
