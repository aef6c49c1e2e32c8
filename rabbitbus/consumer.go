package rabbitbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/dispatch"
)

// Consumer is a running subscription, the broker.Consumer Subscribe
// returns. Its handlers run on a dispatch.Runtime (workers sharded by key,
// the in-flight bound, drain then cancel, the grace for handlers that
// ignore their ctx); each consume session (one per connection) is a
// partition of it whose positions are the delivery tags.
type Consumer struct {
	*dispatch.Runtime
	s    *Subscriber
	sub  broker.Subscription
	topo groupTopology
	log  *slog.Logger
	tag  string

	queue atomic.Value // string: the queue consumed now
}

// consumeSession is the subscription's channel on one connection.
type consumeSession struct {
	sess       *session
	ch         *amqp.Channel
	queue      string
	deliveries <-chan amqp.Delivery
	closes     chan *amqp.Error
	dp         *dispatch.Partition
	dead       atomic.Bool  // lost: its deliveries can no longer be acked
	unacked    atomic.Int64 // deliveries received and not yet acked
	closeOnce  sync.Once
}

// close closes the channel: the broker requeues what was not acknowledged.
// It returns once the broker confirmed (channel.close-ok), i.e. after it
// processed every acknowledgement sent before.
func (cs *consumeSession) close() {
	cs.closeOnce.Do(func() {
		_ = cs.ch.Close()
		go func() {
			for range cs.deliveries { // drained so that amqp091's buffer goroutine ends
			}
		}()
	})
}

// ack acknowledges the delivery tag, on the session it came from.
func (cs *consumeSession) ack(tag int64, log *slog.Logger) {
	if cs.dead.Load() {
		return // the broker delivers it again
	}
	if err := cs.ch.Ack(uint64(tag), false); err != nil {
		log.Debug("rabbitbus: ack failed; the message will be delivered again", "tag", tag, "error", err)
		return
	}
	cs.unacked.Add(-1)
}

func newConsumer(ctx context.Context, s *Subscriber, sub broker.Subscription, topo groupTopology, h broker.Handler) (*Consumer, error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	log := s.log.With("component", "rabbitbus", "topic", sub.Topic, "group", sub.Group)
	dl := &deadLetters{src: s.dl, mandatory: !sub.Ephemeral}
	if !sub.Ephemeral {
		dl.bcc = dlqKey(topo.queue)
	}
	rt, err := dispatch.New(ctx, dispatch.Config{
		Subscription: sub,
		Handler:      h,
		Logger:       log,
		Pipeline: broker.Pipeline{
			DeadLetters:       dl,
			DeadLetterMaxSize: s.cfg.MaxMessageBytes + broker.DeadLetterOverhead,
			Hooks:             s.cfg.Hooks,
			Logger:            s.log,
		},
	})
	if err != nil {
		return nil, err
	}
	c := &Consumer{
		Runtime: rt,
		s:       s,
		sub:     rt.Subscription(),
		topo:    topo,
		log:     log,
		tag:     "rabbitbus-" + hex.EncodeToString(b[:]),
	}
	c.queue.Store(topo.queue)
	return c, nil
}

// Queue returns the name of the queue the subscription consumes.
func (c *Consumer) Queue() string { return c.queue.Load().(string) }

// subscribe opens a channel on the current connection, declares the
// topology and starts consuming. With initial set it returns the first
// error that is not a lost connection, and ctx's error when ctx ends;
// otherwise it retries every error with backoff until ctx ends.
func (c *Consumer) subscribe(ctx context.Context, initial bool) (*consumeSession, error) {
	backoff := c.s.cfg.ReconnectBackoffMin
	for {
		s, err := c.s.mgr.current(ctx)
		if err != nil {
			return nil, err
		}
		cs, err := c.open(ctx, s)
		if err == nil {
			return cs, nil
		}
		if ctx.Err() != nil {
			return nil, err
		}
		if isConnLoss(err) {
			waitLost(ctx, s)
			continue
		}
		if initial {
			return nil, err
		}
		c.log.Error("rabbitbus: cannot resume the subscription; retrying", "retry_in", backoff, "error", err)
		t := time.NewTimer(jitter(backoff))
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, ctx.Err()
		}
		backoff = min(backoff*2, c.s.cfg.ReconnectBackoffMax)
	}
}

// open sets up one consume session on s; ctx bounds the wait (the calls
// themselves cannot be interrupted: an abandoned setup is closed when it
// finishes).
func (c *Consumer) open(ctx context.Context, s *session) (*consumeSession, error) {
	type result struct {
		cs  *consumeSession
		err error
	}
	res := make(chan result, 1)
	go func() {
		cs, err := c.setup(s)
		res <- result{cs, err}
	}()
	select {
	case r := <-res:
		return r.cs, r.err
	case <-ctx.Done():
		go func() {
			if r := <-res; r.cs != nil {
				r.cs.close()
			}
		}()
		return nil, ctx.Err()
	}
}

func (c *Consumer) setup(s *session) (*consumeSession, error) {
	ch, err := s.channel()
	if err != nil {
		return nil, err
	}
	topo := c.topo
	if topo.ephemeral {
		topo.queue = ephemeralQueue(c.sub.Topic, c.sub.Group)
	}
	cs := &consumeSession{sess: s, ch: ch, queue: topo.queue}
	cs.closes = ch.NotifyClose(make(chan *amqp.Error, 1))
	fail := func(err error) (*consumeSession, error) {
		_ = ch.Close()
		return nil, err
	}
	if err := topo.declare(ch, &c.s.cfg); err != nil {
		return fail(err)
	}
	if err := ch.Qos(c.sub.MaxInFlight, 0, false); err != nil {
		return fail(topologyError("queue", topo.queue, err))
	}
	cs.deliveries, err = ch.Consume(topo.queue, c.tag, false, false, false, false, nil)
	if err != nil {
		return fail(topologyError("queue", topo.queue, err))
	}
	c.queue.Store(topo.queue)
	return cs, nil
}

// run consumes until the subscription stops, resubscribing after losses.
// The Subscribe ctx stops it through the runtime.
func (c *Consumer) run(cs *consumeSession) {
	defer c.s.forget(c)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-c.Stopping():
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		c.attach(cs)
		lost := c.pump(cs)
		if !lost {
			break
		}
		// The session's deliveries can no longer be acked: those not
		// started are dropped (the broker delivers them again), those
		// running finish in the background, their outcome unrecorded.
		cs.dead.Store(true)
		cs.dp.Abort()
		go cs.dp.Close(c.sub.DrainTimeout)
		cause := error(errConnLost)
		select {
		case e, ok := <-cs.closes:
			if ok && e != nil {
				cause = e
			}
		default:
		}
		c.log.Warn("rabbitbus: subscription interrupted; resuming", "queue", cs.queue, "error", cause)
		cs.close()
		next, err := c.subscribe(ctx, false)
		if err != nil {
			cs = nil // stopping while disconnected
			break
		}
		c.log.Info("rabbitbus: subscription resumed", "queue", next.queue, "node", next.sess.node)
		cs = next
	}
	c.shutdown(cs)
	c.Finish(nil)
	if err := c.Err(); err != nil {
		c.log.Info("rabbitbus: subscription stopped", "queue", c.Queue(), "error", err)
	} else {
		c.log.Info("rabbitbus: subscription stopped", "queue", c.Queue())
	}
}

// attach opens the runtime partition of a consume session.
func (c *Consumer) attach(cs *consumeSession) {
	cs.dp = c.Open(dispatch.PartitionConfig{Ack: func(tag int64) { cs.ack(tag, c.log) }})
}

// maxBatch bounds the deliveries handed to the runtime at once.
const maxBatch = 64

// pump hands deliveries to the runtime, in batches of what is already
// waiting, until the channel's deliveries end (lost: true) or the
// subscription stops (false).
func (c *Consumer) pump(cs *consumeSession) (lost bool) {
	stopping := c.Stopping()
	for {
		var d amqp.Delivery
		var ok bool
		select {
		case d, ok = <-cs.deliveries:
		case <-stopping:
			return false
		}
		if !ok {
			return true
		}
		now := time.Now()
		batch := append(dispatch.NewBatch(), c.delivery(cs, &d, now))
	more:
		for len(batch) < maxBatch {
			select {
			case d, ok = <-cs.deliveries:
				if !ok {
					break more
				}
				batch = append(batch, c.delivery(cs, &d, now))
			default:
				break more
			}
		}
		if n := cs.dp.Deliver(batch); n < len(batch) {
			return false // stopping: what was not handed out stays unacknowledged
		}
		if !ok {
			return true
		}
	}
}

// delivery converts d for the runtime.
func (c *Consumer) delivery(cs *consumeSession, d *amqp.Delivery, at time.Time) *dispatch.Delivery {
	cs.unacked.Add(1)
	dd := cs.dp.NewDelivery()
	dd.Pos = int64(d.DeliveryTag)
	redelivered := fromDelivery(&dd.Message, d, c.sub.Topic)
	dd.Message.Delivery = broker.Delivery{
		Partition: -1, Offset: -1, Tag: d.DeliveryTag, Attempt: 1, Redelivered: redelivered,
		ReceivedAt: at, Group: c.sub.Group,
	}
	return dd
}

// shutdown stops in the order that loses no acknowledgement and keeps each
// key's order:
//
//  1. stop handing out messages (what arrives now stays unacknowledged);
//  2. let the handlers in flight finish, bounded by DrainTimeout (then
//     their ctx is cancelled, and past the runtime's grace they are
//     abandoned); each finished message is acked as it finishes;
//  3. quiesce: wait until the broker has nothing in flight to us (see
//     quiesce);
//  4. cancel the AMQP consumer: on a quorum queue this is what makes the
//     broker apply the acknowledgements sent before (closing without it
//     lost 15–245 of 10,000, measured here);
//  5. close the channel: the broker requeues what was not acknowledged, in
//     front of the queue and in order.
//
// Only after that may the connection close. Nothing is nacked: a quorum
// queue (RabbitMQ 3.10) puts a message given back by a nack — and a
// delivery that was in flight when its consumer was cancelled — behind the
// rest of the queue, which would reorder its key for the next consumer.
func (c *Consumer) shutdown(cs *consumeSession) {
	if cs == nil {
		return
	}
	cs.dp.Close(c.sub.DrainTimeout)
	if !cs.dead.Load() {
		c.quiesce(cs)
		if err := cs.ch.Cancel(c.tag, false); err != nil {
			c.log.Debug("rabbitbus: basic.cancel failed", "error", err)
		}
	}
	cs.close()
}

// Bounds of quiesce.
const (
	quietPeriod = 25 * time.Millisecond
	quiesceMax  = 500 * time.Millisecond
)

// quiesce waits, before the consumer is cancelled, until no delivery is in
// flight from the broker: exactly, when the subscription holds a full
// prefetch window of unacknowledged messages (the broker sends no more);
// otherwise once no delivery arrived for quietPeriod (the queue ran dry),
// at most quiesceMax. A delivery still in flight at the cancel would go to
// the back of a quorum queue. What arrives here stays unacknowledged.
func (c *Consumer) quiesce(cs *consumeSession) {
	limit := time.NewTimer(quiesceMax)
	defer limit.Stop()
	quiet := time.NewTimer(quietPeriod)
	defer quiet.Stop()
	for cs.unacked.Load() < int64(c.sub.MaxInFlight) {
		select {
		case _, ok := <-cs.deliveries:
			if !ok {
				return
			}
			cs.unacked.Add(1)
			quiet.Reset(quietPeriod)
		case <-quiet.C:
			return
		case <-limit.C:
			return
		}
	}
}
