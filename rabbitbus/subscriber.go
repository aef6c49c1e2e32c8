package rabbitbus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log/slog"
	"sync"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/cosmic-horizons/events/broker"
)

// Subscriber consumes from RabbitMQ. It implements broker.Subscriber and
// is safe for concurrent use. All its subscriptions share one connection,
// each on its own channel.
//
// A durable subscription consumes its group's queue (Config.QueueName; a
// quorum queue by default) bound to the topic's exchange by the
// subscription's EventTypes; the members of a group are competing
// consumers on that queue. The broker does not give a key to one member:
// per-key order holds within one subscription (workers sharded by key),
// not across members, unless Config.SingleActiveConsumer is set. An
// ephemeral subscription consumes an exclusive auto-delete queue of its own.
//
// A message is acknowledged after the handler pipeline (broker.Pipeline:
// retries, dead letters, the failure policy) returned nil. After a lost
// connection the subscription declares its topology again and resumes by
// itself; messages it had not acknowledged are delivered again by the
// broker (Delivery.Redelivered).
type Subscriber struct {
	cfg Config
	log *slog.Logger
	mgr *connManager
	dl  *deadLetterSource

	mu        sync.Mutex
	closed    bool
	consumers map[*Consumer]struct{}
}

// NewSubscriber validates cfg, connects to the first node of cfg.URLs that
// answers (a *ConnectError when none does) and returns a Subscriber with its
// own connection. Dead letters are published through a Publisher connected
// on first use.
func NewSubscriber(ctx context.Context, cfg Config) (*Subscriber, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return newSubscriber(ctx, cfg.withDefaults(), nil)
}

// newSubscriber returns a Subscriber; dl, if not nil, publishes its dead
// letters (and stays open when the Subscriber closes).
func newSubscriber(ctx context.Context, cfg Config, dl *Publisher) (*Subscriber, error) {
	s := &Subscriber{cfg: cfg, log: cfg.Logger, consumers: make(map[*Consumer]struct{})}
	s.dl = &deadLetterSource{cfg: &s.cfg, pub: dl}
	mgr, err := newConnManager(ctx, &s.cfg, "subscriber")
	if err != nil {
		return nil, err
	}
	s.mgr = mgr
	return s, nil
}

// Subscribe declares the subscription's topology (see the package
// documentation), starts consuming, and returns once the broker delivers
// to it: a message published after Subscribe returns reaches it. It fails
// with an error matching broker.ErrInvalidSubscription for an invalid
// Subscription, broker.ErrClosed after Close, a *TopologyError (matching
// ErrTopologyMismatch) when a queue exists with other arguments, or a
// connection error when no connection came within Config.SetupTimeout.
//
// The returned broker.Consumer is a *Consumer. Its handlers run on the
// shared consumer runtime (package dispatch): sub.Concurrency workers
// sharded by key (messages without a key round-robin), at most
// sub.MaxInFlight messages unacknowledged (the prefetch), each acked as
// its handler succeeds. It stops when ctx is cancelled, when it is closed,
// or when the Subscriber is closed, in this order: stop handing out
// deliveries, let the handlers in flight finish (bounded by
// Subscription.DrainTimeout, then their ctx is cancelled; handlers that
// ignore it are abandoned after dispatch.DefaultGrace), acknowledge what
// they finished, cancel the AMQP consumer, close the channel (the broker
// requeues what was not acknowledged). Closing the channel before
// the connection is what keeps the last acknowledgements of a quorum queue
// from being lost.
func (s *Subscriber) Subscribe(ctx context.Context, sub broker.Subscription, h broker.Handler) (broker.Consumer, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return nil, broker.ErrClosed
	}
	if h == nil {
		return nil, fmt.Errorf("%w: nil handler", broker.ErrInvalidSubscription)
	}
	if err := sub.Validate(); err != nil {
		return nil, err
	}
	sub = sub.WithDefaults()
	topo, err := s.topology(&sub)
	if err != nil {
		return nil, err
	}
	c, err := newConsumer(ctx, s, sub, topo, h)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithTimeout(ctx, s.cfg.SetupTimeout)
	cs, err := c.subscribe(sctx, true)
	cancel()
	if err != nil {
		c.Finish(nil)
		return nil, err
	}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cs.close()
		c.Finish(nil)
		return nil, broker.ErrClosed
	}
	s.consumers[c] = struct{}{}
	s.mu.Unlock()
	go c.run(cs)
	return c, nil
}

// topology returns what sub needs declared.
func (s *Subscriber) topology(sub *broker.Subscription) (groupTopology, error) {
	invalid := func(err error) error { return fmt.Errorf("%w: %w", broker.ErrInvalidSubscription, err) }
	if err := checkTopic(sub.Topic); err != nil {
		return groupTopology{}, invalid(err)
	}
	keys, filtered := patterns(sub)
	g := groupTopology{topic: sub.Topic, ephemeral: sub.Ephemeral, keys: keys, filtered: filtered}
	if !sub.Ephemeral {
		g.queue = s.cfg.QueueName(sub.Topic, sub.Group)
		if err := checkQueue(g.queue); err != nil {
			return groupTopology{}, invalid(err)
		}
	}
	return g, nil
}

// ephemeralQueue returns a fresh name for an ephemeral subscription's
// queue: a new one on every connection, because the broker may not yet
// have noticed that the previous connection (which owned the exclusive
// queue) is gone.
func ephemeralQueue(topic, group string) string {
	if group == "" {
		group = "live"
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	return DefaultQueueName(topic, group) + ".eph-" + hex.EncodeToString(b[:])
}

// DeclareGroup declares the topology of a durable subscription (exchange,
// group queue, bindings, dead-letter queue) without consuming, so that the
// group's queue keeps every message published from now on for the first
// member that subscribes: the AMQP way to have a group "exist" before its
// consumers start (deploy time provisioning). Declaring is idempotent; a
// queue existing with other arguments is a *TopologyError.
func (s *Subscriber) DeclareGroup(ctx context.Context, sub broker.Subscription) error {
	if sub.Ephemeral {
		return fmt.Errorf("%w: DeclareGroup needs a durable subscription", broker.ErrInvalidSubscription)
	}
	if err := sub.Validate(); err != nil {
		return err
	}
	topo, err := s.topology(&sub)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SetupTimeout)
	defer cancel()
	return withChannel(ctx, s.mgr, func(ch *amqp.Channel) error { return topo.declare(ch, &s.cfg) })
}

// DeleteGroup deletes the queues of group on topic (the group queue, its
// ".dlq" and ".unmatched" queues) with the messages they hold. Deleting
// what does not exist is not an error.
func (s *Subscriber) DeleteGroup(ctx context.Context, topic, group string) error {
	q := s.cfg.QueueName(topic, group)
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SetupTimeout)
	defer cancel()
	return withChannel(ctx, s.mgr, func(ch *amqp.Channel) error {
		for _, name := range []string{q, q + suffixDLQ, q + suffixUnmatched} {
			if _, err := ch.QueueDelete(name, false, false, false); err != nil {
				return fmt.Errorf("rabbitbus: delete queue %q: %w", name, err)
			}
		}
		return nil
	})
}

// DeleteTopic deletes the exchanges of topic and of its dead-letter topic
// (with their alternate exchanges). Queues are not deleted: they belong to
// groups (DeleteGroup).
func (s *Subscriber) DeleteTopic(ctx context.Context, topic string) error {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.SetupTimeout)
	defer cancel()
	dlt := broker.DeadLetterTopic(topic)
	return withChannel(ctx, s.mgr, func(ch *amqp.Channel) error {
		for _, name := range []string{topic, alternateExchange(topic), dlt, alternateExchange(dlt)} {
			if err := ch.ExchangeDelete(name, false, false); err != nil {
				return fmt.Errorf("rabbitbus: delete exchange %q: %w", name, err)
			}
		}
		return nil
	})
}

// QueueName returns the queue of group on topic (Config.QueueName).
func (s *Subscriber) QueueName(topic, group string) string { return s.cfg.QueueName(topic, group) }

// Close stops every subscription as Subscribe describes, then closes the
// connection (channels first, then the connection) and the dead-letter
// Publisher it opened. Subscribe after Close returns broker.ErrClosed.
// Close is idempotent and returns nil.
func (s *Subscriber) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	cs := make([]*Consumer, 0, len(s.consumers))
	for c := range s.consumers {
		cs = append(cs, c)
	}
	s.mu.Unlock()
	var wg sync.WaitGroup
	for _, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = c.Close()
		}()
	}
	wg.Wait()
	s.dl.close()
	s.mgr.close()
	return nil
}

func (s *Subscriber) forget(c *Consumer) {
	s.mu.Lock()
	delete(s.consumers, c)
	s.mu.Unlock()
}

// deadLetterSource provides the Publisher dead letters go through: the
// Backend's, or one opened on first use.
type deadLetterSource struct {
	cfg *Config

	mu     sync.Mutex
	pub    *Publisher
	own    bool
	closed bool
}

func (d *deadLetterSource) get(ctx context.Context) (*Publisher, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, broker.ErrClosed
	}
	if d.pub == nil {
		p, err := newPublisher(ctx, *d.cfg)
		if err != nil {
			return nil, fmt.Errorf("rabbitbus: connect the dead-letter publisher: %w", err)
		}
		d.pub, d.own = p, true
	}
	return d.pub, nil
}

func (d *deadLetterSource) close() {
	d.mu.Lock()
	d.closed = true
	p, own := d.pub, d.own
	d.mu.Unlock()
	if own {
		_ = p.Close()
	}
}

// deadLetters is the broker.Publisher a subscription's pipeline sends dead
// letters to: the dead-letter topic "<topic>.dlq", with the group's
// dead-letter queue as an extra (BCC) destination.
//
// It takes messages up to Config.MaxMessageBytes + broker.DeadLetterOverhead,
// so the dead letter of any message Publish accepted fits; a dead letter of
// a larger message (from a producer outside this package) goes without its
// body (broker.DropBody).
type deadLetters struct {
	src       *deadLetterSource
	bcc       string
	mandatory bool
}

func (d *deadLetters) Publish(ctx context.Context, msgs ...*broker.Message) error {
	p, err := d.src.get(ctx)
	if err != nil {
		return err
	}
	return p.publish(ctx, msgs, pubOptions{mandatory: d.mandatory, bcc: d.bcc, maxSize: d.src.cfg.MaxMessageBytes + broker.DeadLetterOverhead})
}

func (d *deadLetters) Close() error { return nil }
