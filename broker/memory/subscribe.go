package memory

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/internal/inflight"
)

// Subscribe starts consuming sub.Topic for sub.Group and returns once the
// consumer has joined the group and owns its share of the partitions: every
// message published after Subscribe returns reaches the group. (When a
// partition moves from another member, Subscribe waits for that member to
// finish its in-flight handlers on it, at most its DrainTimeout.)
//
// sub is checked with Validate (the error matches
// broker.ErrInvalidSubscription) and completed with WithDefaults. A durable
// group is registered on the topic on first subscribe and kept for the
// broker's lifetime with its committed offset per partition: a group that
// subscribes again resumes right after its last committed message. A new
// group starts at the oldest retained message (broker.StartOldest) or at
// the end (broker.StartNewest). An ephemeral subscription is a private group
// starting at the end, removed when it stops; its name is sub.Group (or
// "ephemeral") followed by "~" and a number.
//
// The members of a group share its partitions, assigned round-robin in join
// order and rebalanced when one joins or leaves; without members leaving
// mid-handler, no message is handled twice. Handlers run inside
// broker.Pipeline (filter, failure policy, retries, timeout, recovery,
// with the broker itself receiving dead letters), on up to sub.Concurrency
// goroutines, never concurrently for one key; the committed offset of a
// partition is the prefix of finished messages. If the wrapped handler
// still returns an error (OnFailureStop), the message is not committed and
// the consumer stops with a *broker.HandlerError; its other in-flight
// handlers finish as on Close. An error after a drain bound cancelled the
// handler's ctx is not a failure: the message is left uncommitted, for
// redelivery, and the consumer goes on stopping or rebalancing.
//
// The subscription runs until ctx is cancelled, the Consumer is closed or
// the broker is closed. Handlers' contexts carry ctx's values but are not
// cancelled with it: they are cancelled only when a drain bound expires.
// If ctx is cancelled before Subscribe returns, it returns ctx's error.
// Subscribe is safe for concurrent use; after Close it returns
// broker.ErrClosed.
func (b *Broker) Subscribe(ctx context.Context, sub broker.Subscription, h broker.Handler) (broker.Consumer, error) {
	if b.closing.Load() {
		return nil, broker.ErrClosed
	}
	if err := sub.Validate(); err != nil {
		return nil, err
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", broker.ErrInvalidSubscription)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	sub = sub.WithDefaults()
	t := b.topic(sub.Topic)
	var g *group
	if sub.Ephemeral {
		prefix := sub.Group
		if prefix == "" {
			prefix = "ephemeral"
		}
		sub.Group = fmt.Sprintf("%s~%d", prefix, b.ephemeral.Add(1))
		g = t.ephemeralGroup(sub.Group)
	} else {
		g = t.durableGroup(sub.Group, sub.StartAt)
	}
	c := newConsumer(ctx, b, t, g, sub, h)
	c.stopOnCancel = context.AfterFunc(ctx, c.requestStop)
	g.join(c)
	c.start()
	if !b.register(c) {
		c.requestStop()
		<-c.done
		return nil, broker.ErrClosed
	}
	select {
	case <-c.ready:
		return c, nil
	case <-c.done:
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := c.Err(); err != nil {
			return nil, err
		}
		return nil, broker.ErrClosed
	}
}

// consumer is one member of a group: a run loop that owns the member's
// partitions (its assignments) and, with Concurrency 1, calls the handler
// itself; with Concurrency > 1 it feeds that many worker goroutines. All
// assignment state belongs to the run loop; other goroutines talk to it
// through poke (attention + wake) and, for workers, the results channel.
// The handlers' contexts (hctx and one per assignment) are kept here
// because they outlive any call: they span the subscription.
type consumer struct {
	b       *Broker
	t       *topic
	g       *group
	sub     broker.Subscription
	handler broker.Handler

	wakeCh    chan struct{} // capacity 1: "look again"
	attention atomic.Bool   // a stop or a rebalance wants the run loop
	stopping  atomic.Bool

	stopOnce     sync.Once
	drainTimer   *time.Timer // set once, before stopping is stored
	stopOnCancel func() bool // unregisters the ctx watch
	hctx         context.Context
	hcancel      context.CancelFunc

	// held counts the messages handed to handlers and not finished, for
	// Health.
	held *inflight.Set

	ready chan struct{} // closed once the member owns its assignment
	done  chan struct{} // closed when fully stopped

	errMu sync.Mutex
	err   error

	// Run-loop state.
	byPart     []*assignment // by partition id
	assigns    []*assignment // live assignments, polled round-robin
	rr         int
	inflight   int
	batch      []entry
	readyShut  bool
	workers    []chan item
	results    chan result
	workerWG   sync.WaitGroup
	needCommit []*assignment
}

func newConsumer(ctx context.Context, b *Broker, t *topic, g *group, sub broker.Subscription, h broker.Handler) *consumer {
	c := &consumer{
		b: b, t: t, g: g, sub: sub,
		wakeCh: make(chan struct{}, 1),
		ready:  make(chan struct{}),
		done:   make(chan struct{}),
		byPart: make([]*assignment, len(t.parts)),
		held:   inflight.New(sub.MaxInFlight),
	}
	c.handler = broker.Pipeline{
		Subscription:      sub,
		DeadLetters:       deadLetters{b},
		DeadLetterMaxSize: b.cfg.maxMessageSize + broker.DeadLetterOverhead,
		Middleware:        b.cfg.middleware,
		Hooks:             b.cfg.hooks,
		Logger:            b.cfg.logger,
	}.Wrap(h)
	c.hctx, c.hcancel = context.WithCancel(context.WithoutCancel(ctx))
	c.attention.Store(true)
	return c
}

// start launches the run loop and, for Concurrency > 1, the workers.
func (c *consumer) start() {
	if n := c.sub.Concurrency; n > 1 {
		c.results = make(chan result, c.sub.MaxInFlight)
		c.workers = make([]chan item, n)
		for i := range c.workers {
			c.workers[i] = make(chan item, c.sub.MaxInFlight)
			c.workerWG.Add(1)
			go c.work(c.workers[i])
		}
	}
	go c.run()
}

// Close stops the subscription: no new message is handed out, in-flight
// handlers finish (after DrainTimeout their ctx is cancelled and what they
// did not finish stays uncommitted), the finished prefix of each partition
// is committed, the member leaves its group (its partitions go to the
// remaining members), and Close returns the error that stopped the
// consumer: nil after a clean stop, a *broker.HandlerError after a handler
// failure with OnFailureStop. Close is idempotent and safe for concurrent
// use; it must not be called from the subscription's own handler.
func (c *consumer) Close() error {
	c.requestStop()
	<-c.done
	return c.Err()
}

// Done is closed when the subscription has fully stopped, for whatever
// reason.
func (c *consumer) Done() <-chan struct{} { return c.done }

// Err returns the error that stopped the subscription: nil while it runs
// and after a clean stop, a *broker.HandlerError after a handler failure
// with OnFailureStop.
func (c *consumer) Err() error {
	c.errMu.Lock()
	defer c.errMu.Unlock()
	return c.err
}

// requestStop asks the run loop to stop and bounds the drain. Safe from any
// goroutine, any number of times.
func (c *consumer) requestStop() {
	c.stopOnce.Do(func() {
		select {
		case <-c.done: // stopped already (a ctx cancelled after Close)
			return
		default:
		}
		c.drainTimer = time.AfterFunc(c.sub.DrainTimeout, c.hcancel)
		c.stopping.Store(true)
		c.poke()
	})
}

// fail records the error that stops the consumer and stops it.
func (c *consumer) fail(err error) {
	c.errMu.Lock()
	if c.err == nil {
		c.err = err
	}
	c.errMu.Unlock()
	c.requestStop()
}

// wake tells the run loop to look for messages again. It never blocks.
func (c *consumer) wake() {
	select {
	case c.wakeCh <- struct{}{}:
	default:
	}
}

// poke tells the run loop that its assignment or its state changed.
func (c *consumer) poke() {
	c.attention.Store(true)
	c.wake()
}

// finish runs last on the run loop, with nothing in flight.
func (c *consumer) finish() {
	c.g.leave(c)
	for _, w := range c.workers {
		close(w)
	}
	c.workerWG.Wait()
	if c.stopping.Load() && c.drainTimer != nil {
		c.drainTimer.Stop()
	}
	c.hcancel()
	if c.stopOnCancel != nil {
		c.stopOnCancel()
	}
	c.b.forget(c)
	close(c.done)
}
