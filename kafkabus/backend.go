package kafkabus

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/IBM/sarama"

	"github.com/cosmic-horizons/events/broker"
)

// Backend is the Kafka backend: a broker.Publisher and broker.Subscriber
// on one cluster, with topic provisioning (Admin) and a health check.
// Its methods are safe for concurrent use.
//
// Publishing goes through one idempotent producer shared by every caller.
// Each Subscribe call is a consumer group member of its own (or, for an
// ephemeral subscription, a set of partition consumers), with its own
// connections.
type Backend struct {
	cfg   Config
	pub   *publisher
	dead  *deadLetters
	admin *Admin

	mu     sync.Mutex
	closed bool
	subs   map[*subscription]struct{}
	groups map[string]map[string]bool // group -> topics, for Health
	topics map[string]bool            // topics subscribed, for Health

	// life ends when Close starts; running replays stop with it, and Close
	// waits for their readers (replays) before closing connections.
	life    context.Context
	kill    context.CancelFunc
	replays sync.WaitGroup
}

var (
	_ broker.Backend       = (*Backend)(nil)
	_ broker.HealthChecker = (*Backend)(nil)
)

// New connects to the cluster of cfg and starts the producer. It fails if
// cfg is invalid (every problem reported, see Config.Validate), no broker
// can be reached, or ctx ends first; ctx is not kept.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	pub, err := connect(ctx, func() (*publisher, error) { return newPublisher(cfg, cfg.sarama()) })
	if err != nil {
		return nil, err
	}
	life, kill := context.WithCancel(context.Background())
	return &Backend{
		cfg:    cfg,
		pub:    pub,
		dead:   newDeadLetters(cfg),
		admin:  &Admin{cfg: cfg},
		subs:   make(map[*subscription]struct{}),
		groups: make(map[string]map[string]bool),
		topics: make(map[string]bool),
		life:   life,
		kill:   kill,
	}, nil
}

// Config returns the configuration in effect, defaults applied.
func (b *Backend) Config() Config { return b.cfg }

// Admin returns the topic administration of the backend's cluster. It shares
// the backend's admin connection, which Backend.Close closes; its own Close
// does nothing.
func (b *Backend) Admin() *Admin { return &Admin{cfg: b.cfg, shared: b.admin} }

// Publish implements broker.Publisher. It returns once every message is
// acknowledged by all in-sync replicas (acks=all, idempotent producer).
// Messages of one call with equal keys keep their order; concurrent calls
// are batched together. A message over Config.MaxMessageBytes fails the
// call with broker.ErrMessageTooLarge before anything is sent, one without
// a topic with broker.ErrInvalidMessage. Messages the producer gave up on
// (after Config.ProducerRetries) are listed in a *broker.PublishError; a
// topic that does not exist is reported as broker.ErrUnroutable. After
// Close, Publish returns broker.ErrClosed; a call still waiting for
// acknowledgements when Close gives up (Config.CloseTimeout) returns a
// *broker.PublishError matching broker.ErrClosed.
func (b *Backend) Publish(ctx context.Context, msgs ...*broker.Message) error {
	return b.pub.Publish(ctx, msgs...)
}

var _ broker.AsyncPublisher = (*Backend)(nil)

// PublishAsync implements broker.AsyncPublisher: the messages are handed to
// the producer in order (equal keys keep their order across calls made one
// after another) and done is called once every one is acknowledged or
// failed.
func (b *Backend) PublishAsync(ctx context.Context, done func(error), msgs ...*broker.Message) error {
	return b.pub.PublishAsync(ctx, done, msgs...)
}

// Subscribe implements broker.Subscriber.
//
// A durable subscription is a member of the consumer group sub.Group;
// Subscribe returns once the member got its first assignment and every
// assigned partition has its start offset (the committed one, else
// sub.StartAt). A join that fails for a transient reason (a broken or
// timed-out connection, a coordinator moving or rebalancing) is reported
// to the logger and hooks and tried again with backoff until ctx ends; a
// join refused for a reason the caller must fix (authorization, an
// invalid session timeout, an unknown topic) fails Subscribe. A join can
// wait at the coordinator for the group's rebalance timeout, for instance
// behind a member that crashed without leaving. Partitions are handled in order, and with Concurrency > 1
// their messages are spread over the workers by key. The offset committed
// for a partition is the lowest one not yet finished. When partitions are
// revoked (a rebalance) or the subscription stops, no more messages are
// handed out, in-flight handlers get DrainTimeout (within the group's
// RebalanceTimeout on a rebalance) to finish before their ctx is cancelled,
// and what finished is committed.
//
// An ephemeral subscription reads every partition from its high-water mark
// at the time of the call and commits nothing.
func (b *Backend) Subscribe(ctx context.Context, sub broker.Subscription, h broker.Handler) (broker.Consumer, error) {
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
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil, broker.ErrClosed
	}
	s, err := newSubscription(ctx, sub, b.cfg, h, b.dead)
	if err != nil {
		b.mu.Unlock()
		return nil, err
	}
	b.subs[s] = struct{}{}
	b.topics[sub.Topic] = true
	if !sub.Ephemeral {
		if b.groups[sub.Group] == nil {
			b.groups[sub.Group] = make(map[string]bool)
		}
		b.groups[sub.Group][sub.Topic] = true
	}
	b.mu.Unlock()
	go func() {
		<-s.Done()
		b.mu.Lock()
		delete(b.subs, s)
		b.mu.Unlock()
	}()

	sc := b.cfg.sarama()
	// A JoinGroup request legitimately waits at the coordinator for up to
	// the rebalance timeout (members finishing their work and rejoining, a
	// crashed member's session running out), but sarama reads every
	// response under Net.ReadTimeout (30 s by default): a join behind a
	// crashed member failed with an i/o timeout. Like the Java client
	// (rebalance.timeout.ms + 5 s for JoinGroup), wait that long.
	sc.Net.ReadTimeout = max(sc.Net.ReadTimeout, b.cfg.RebalanceTimeout+5*time.Second)
	if sub.StartAt == broker.StartNewest {
		sc.Consumer.Offsets.Initial = sarama.OffsetNewest
	} else {
		sc.Consumer.Offsets.Initial = sarama.OffsetOldest
	}
	if sub.Ephemeral {
		if err := s.startEphemeral(sc); err != nil {
			s.finish(err)
			return nil, err
		}
		return s, nil
	}
	cg, err := sarama.NewConsumerGroup(b.cfg.Brokers, sub.Group, sc)
	if err != nil {
		s.finish(err)
		return nil, fmt.Errorf("kafkabus: consumer group %q: %w", sub.Group, err)
	}
	ready := newReadySignal()
	go s.runGroup(cg, ready)
	select {
	case err := <-ready.ch:
		if err != nil {
			<-s.Done()
			return nil, fmt.Errorf("kafkabus: join group %q on %q: %w", sub.Group, sub.Topic, err)
		}
		return s, nil
	case <-s.Done():
		if err := s.Err(); err != nil {
			return nil, err
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, broker.ErrClosed
	}
}

// Close stops every subscription (each drains and commits as Consumer.Close
// does) and every running Replay, waits for in-flight Publish calls, flushes
// the producer and closes every connection. Publish, Subscribe and Replay
// return broker.ErrClosed afterwards. Close is idempotent.
//
// Close returns within a bound whatever is queued: the subscriptions stop
// concurrently, each within its Subscription.DrainTimeout (plus the short
// grace the consumer gives a handler that ignores its ctx), replays stop at
// once, and then the producer gets Config.CloseTimeout to deliver what it
// holds. Messages still unacknowledged then fail with broker.ErrClosed (the
// Publish calls waiting for them return it), the connections are closed
// anyway, and Close returns an error saying so.
func (b *Backend) Close() error {
	b.mu.Lock()
	if b.closed {
		b.mu.Unlock()
		return nil
	}
	b.closed = true
	subs := make([]*subscription, 0, len(b.subs))
	for s := range b.subs {
		subs = append(subs, s)
	}
	b.mu.Unlock()
	b.kill()
	var wg sync.WaitGroup
	for _, s := range subs {
		wg.Go(func() { _ = s.Close() })
	}
	wg.Wait()
	b.replays.Wait()
	return errors.Join(b.dead.close(), b.pub.Close(), b.admin.Close())
}

// usage returns the groups (with their topics) and topics this backend has
// subscribed to, sorted, for Health.
func (b *Backend) usage() (groups map[string][]string, topics []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	groups = make(map[string][]string, len(b.groups))
	for g, ts := range b.groups {
		for t := range ts {
			groups[g] = append(groups[g], t)
		}
		slices.Sort(groups[g])
	}
	for t := range b.topics {
		topics = append(topics, t)
	}
	slices.Sort(topics)
	return groups, topics
}

// inFlight reports what every running subscription holds, sorted by topic
// and group.
func (b *Backend) inFlight() []broker.InFlight {
	now := time.Now()
	b.mu.Lock()
	out := make([]broker.InFlight, 0, len(b.subs))
	for s := range b.subs {
		out = append(out, s.Report(now))
	}
	b.mu.Unlock()
	slices.SortFunc(out, func(x, y broker.InFlight) int {
		return cmp.Or(cmp.Compare(x.Topic, y.Topic), cmp.Compare(x.Group, y.Group))
	})
	return out
}

// connect runs dial, which sarama does not let a context interrupt, and
// returns its result, or ctx's error as soon as ctx ends; a connection
// dial makes after that is closed when dial returns (sarama's dial and
// metadata timeouts bound it).
func connect[T io.Closer](ctx context.Context, dial func() (T, error)) (T, error) {
	var zero T
	if err := ctx.Err(); err != nil {
		return zero, fmt.Errorf("kafkabus: connect: %w", err)
	}
	type result struct {
		v   T
		err error
	}
	done := make(chan result, 1)
	go func() {
		v, err := dial()
		done <- result{v, err}
	}()
	select {
	case r := <-done:
		return r.v, r.err
	case <-ctx.Done():
		go func() {
			if r := <-done; r.err == nil {
				_ = r.v.Close()
			}
		}()
		return zero, fmt.Errorf("kafkabus: connect: %w", ctx.Err())
	}
}
