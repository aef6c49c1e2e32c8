package memory

import (
	"context"
	"fmt"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/dispatch"
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
// mid-handler, no message is handled twice. Each owned partition has a
// reader goroutine that hands its messages to the subscription's runtime
// (package dispatch, shared with the other backends): handlers run inside
// broker.Pipeline (filter, failure policy, retries, timeout, recovery,
// with the broker itself receiving dead letters), on sub.Concurrency
// worker goroutines, sharded by key (never concurrently for one key;
// messages without a key round-robin); the committed offset of a
// partition is the prefix of finished messages. A revoked partition hands
// out nothing more; its handlers in flight get DrainTimeout, then their ctx
// is cancelled, and handlers that ignore it are abandoned after
// dispatch.DefaultGrace (their messages left for redelivery). So a member
// joining waits at most DrainTimeout plus the grace for a busy member to
// let go, whatever Concurrency. If the wrapped handler still returns an
// error (OnFailureStop), the message is not committed and the consumer
// stops with a *broker.HandlerError.
//
// The subscription runs until ctx is cancelled, the Consumer is closed or
// the broker is closed. Handlers' contexts carry ctx's values but are not
// cancelled with it: they are cancelled only when a drain bound expires.
// If ctx is cancelled before Subscribe returns, it returns ctx's error.
// Subscribe is safe for concurrent use; after Close it returns
// broker.ErrClosed.
func (b *Backend) Subscribe(ctx context.Context, sub broker.Subscription, h broker.Handler) (broker.Consumer, error) {
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
	c, err := newConsumer(ctx, b, t, g, sub, h)
	if err != nil {
		return nil, err
	}
	g.join(c)
	go c.run()
	if !b.register(c) {
		c.rt.Stop()
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

// consumer is one member of a group: a run loop that keeps the member's
// assignments in line with the group (starting a reader per owned
// partition, stopping and releasing revoked ones), over a runtime
// (dispatch.Runtime) that runs the handlers. Assignment state belongs to
// the run loop; other goroutines poke it.
type consumer struct {
	b   *Backend
	t   *topic
	g   *group
	sub broker.Subscription
	rt  *dispatch.Runtime

	wakeCh chan struct{} // capacity 1: "look again"
	ready  chan struct{} // closed once the member owns its assignment
	done   chan struct{} // closed when fully stopped

	// Run-loop state.
	byPart    []*assignment // by partition id
	live      int           // assignments not released
	readyShut bool
}

func newConsumer(ctx context.Context, b *Backend, t *topic, g *group, sub broker.Subscription, h broker.Handler) (*consumer, error) {
	rt, err := dispatch.New(ctx, dispatch.Config{
		Subscription: sub,
		Handler:      h,
		Pipeline: broker.Pipeline{
			DeadLetters:       deadLetters{b},
			DeadLetterMaxSize: b.cfg.MaxMessageBytes + broker.DeadLetterOverhead,
			Hooks:             b.cfg.Hooks,
			Logger:            b.cfg.Logger,
		},
	})
	if err != nil {
		return nil, err
	}
	return &consumer{
		b: b, t: t, g: g, sub: rt.Subscription(), rt: rt,
		wakeCh: make(chan struct{}, 1),
		ready:  make(chan struct{}),
		done:   make(chan struct{}),
		byPart: make([]*assignment, len(t.parts)),
	}, nil
}

// Close stops the subscription: no new message is handed out, in-flight
// handlers finish (after DrainTimeout their ctx is cancelled, and after
// dispatch.DefaultGrace more a handler that ignores it is abandoned; what
// did not finish stays uncommitted), the finished prefix of each partition
// is committed, the member leaves its group (its partitions go to the
// remaining members), and Close returns the error that stopped the
// consumer: nil after a clean stop, a *broker.HandlerError after a handler
// failure with OnFailureStop. Close is idempotent and safe for concurrent
// use; it must not be called from the subscription's own handler.
func (c *consumer) Close() error {
	c.rt.Stop()
	<-c.done
	return c.Err()
}

// Done is closed when the subscription has fully stopped, for whatever
// reason.
func (c *consumer) Done() <-chan struct{} { return c.done }

// Err returns the error that stopped the subscription: nil while it runs
// and after a clean stop, a *broker.HandlerError after a handler failure
// with OnFailureStop.
func (c *consumer) Err() error { return c.rt.Err() }

// wake tells the run loop to look again. It never blocks.
func (c *consumer) wake() {
	select {
	case c.wakeCh <- struct{}{}:
	default:
	}
}

// poke tells the run loop that its assignment or its state changed.
func (c *consumer) poke() { c.wake() }

func (c *consumer) isStopping() bool {
	select {
	case <-c.rt.Stopping():
		return true
	default:
		return false
	}
}

// run is the member's loop: reconcile when poked, until the subscription
// stops and every reader is released.
func (c *consumer) run() {
	stopping := c.rt.Stopping()
	for {
		c.reconcile()
		if stopping == nil && c.live == 0 {
			break
		}
		select {
		case <-c.wakeCh:
		case <-stopping:
			stopping = nil
		}
	}
	c.g.leave(c)
	c.rt.Finish(nil)
	c.b.forget(c)
	close(c.done)
}
