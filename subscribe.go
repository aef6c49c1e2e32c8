package events

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/cosmic-horizons/events/broker"
)

// Subscribe runs r for sub.Group: the mirror of Publish. With sub.Topic
// empty it subscribes to every topic the Router's event types are
// published to (from the registry; every topic with OnEvent), one
// subscription per topic, made together (on Kafka, one rebalance for them
// all); with sub.Topic set, to that topic only. The rest of sub applies to
// each (Concurrency, Retry, OnFailure…), and the Bus's broker hooks are
// added to its Hooks. It returns once every subscription is set up (see
// broker.Subscriber.Subscribe); if one fails, those made are closed and the
// error names the topic. The Consumer stops them all.
func (b *Bus) Subscribe(ctx context.Context, sub broker.Subscription, r *Router) (broker.Consumer, error) {
	if b.sub == nil {
		return nil, errors.New("events: this Bus has no subscriber (its backend is not a broker.Subscriber; see WithSubscriber)")
	}
	c, err := b.compile(r)
	if err != nil {
		return nil, err
	}
	topics := []string{sub.Topic}
	if sub.Topic == "" {
		topics = c.topics
	}
	if len(b.subHks) > 0 {
		sub.Hooks = append(append([]broker.Hook(nil), sub.Hooks...), b.subHks...)
	}
	cs, err := broker.SubscribeTopics(ctx, b.sub, topics, sub, c.handle)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	if len(cs) == 1 {
		return cs[0], nil
	}
	return newGroupConsumer(cs), nil
}

// Handler returns r as a broker.Handler decoding with b's registry, for a
// subscription made on a backend directly or for a replay
// (broker.Replayer).
func (b *Bus) Handler(r *Router) (broker.Handler, error) {
	c, err := b.compile(r)
	if err != nil {
		return nil, err
	}
	return c.handle, nil
}

// groupConsumer is the Consumer of several subscriptions: it stops them
// all, and it is done when all are.
type groupConsumer struct {
	cs   []broker.Consumer
	done chan struct{}
	once sync.Once
	err  error
}

func newGroupConsumer(cs []broker.Consumer) *groupConsumer {
	g := &groupConsumer{cs: cs, done: make(chan struct{})}
	go func() {
		for _, c := range cs {
			<-c.Done()
		}
		g.finish()
	}()
	// One stopping (a failure under OnFailureStop) stops the others: the
	// service sees one consumer.
	for _, c := range cs {
		go func() {
			select {
			case <-c.Done():
				if c.Err() != nil {
					go func() { _ = g.Close() }()
				}
			case <-g.done:
			}
		}()
	}
	return g
}

func (g *groupConsumer) finish() {
	g.once.Do(func() {
		var errs []error
		for _, c := range g.cs {
			if err := c.Err(); err != nil {
				errs = append(errs, err)
			}
		}
		g.err = errors.Join(errs...)
		close(g.done)
	})
}

// Close stops every subscription (each drains as broker.Consumer.Close
// says) and returns their errors joined.
func (g *groupConsumer) Close() error {
	_ = broker.CloseAll(g.cs...)
	<-g.done
	return g.err
}

// Done is closed when every subscription has stopped.
func (g *groupConsumer) Done() <-chan struct{} { return g.done }

// Err returns the errors that stopped the subscriptions, joined; nil while
// they run.
func (g *groupConsumer) Err() error {
	select {
	case <-g.done:
		return g.err
	default:
		return nil
	}
}
