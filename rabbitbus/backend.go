package rabbitbus

import (
	"context"

	"github.com/cosmic-horizons/events/broker"
)

// Backend is a Publisher and a Subscriber on one configuration: a
// broker.Backend and a broker.HealthChecker. Publishing and consuming use
// separate connections (RabbitMQ blocks a publishing connection under a
// resource alarm; acknowledgements must still flow), and dead letters go
// through the Backend's Publisher. Safe for concurrent use.
type Backend struct {
	pub *Publisher
	sub *Subscriber
}

var (
	_ broker.Backend       = (*Backend)(nil)
	_ broker.HealthChecker = (*Backend)(nil)
	_ broker.Publisher     = (*Publisher)(nil)
	_ broker.Subscriber    = (*Subscriber)(nil)
	_ broker.Consumer      = (*Consumer)(nil)
)

// New validates cfg and connects a Publisher and a
// Subscriber, each to the first node of cfg.URLs that answers. The first
// connection fails fast: when no node accepts it, New returns a
// *ConnectError (matching ErrConnect, and ErrAccessRefused for refused
// credentials) after trying each URL once. Later losses are retried
// forever, with backoff, until Close.
func New(ctx context.Context, cfg Config) (*Backend, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	pub, err := newPublisher(ctx, cfg)
	if err != nil {
		return nil, err
	}
	sub, err := newSubscriber(ctx, cfg, pub)
	if err != nil {
		_ = pub.Close()
		return nil, err
	}
	return &Backend{pub: pub, sub: sub}, nil
}

// Publisher returns the Backend's Publisher.
func (b *Backend) Publisher() *Publisher { return b.pub }

// Subscriber returns the Backend's Subscriber.
func (b *Backend) Subscriber() *Subscriber { return b.sub }

// Publish is Publisher.Publish.
func (b *Backend) Publish(ctx context.Context, msgs ...*broker.Message) error {
	return b.pub.Publish(ctx, msgs...)
}

var _ broker.AsyncPublisher = (*Backend)(nil)

// PublishAsync is Publisher.PublishAsync.
func (b *Backend) PublishAsync(ctx context.Context, done func(error), msgs ...*broker.Message) error {
	return b.pub.PublishAsync(ctx, done, msgs...)
}

// Subscribe is Subscriber.Subscribe.
func (b *Backend) Subscribe(ctx context.Context, sub broker.Subscription, h broker.Handler) (broker.Consumer, error) {
	return b.sub.Subscribe(ctx, sub, h)
}

// DeclareGroup is Subscriber.DeclareGroup.
func (b *Backend) DeclareGroup(ctx context.Context, sub broker.Subscription) error {
	return b.sub.DeclareGroup(ctx, sub)
}

// DeleteGroup is Subscriber.DeleteGroup.
func (b *Backend) DeleteGroup(ctx context.Context, topic, group string) error {
	return b.sub.DeleteGroup(ctx, topic, group)
}

// DeleteTopic is Subscriber.DeleteTopic.
func (b *Backend) DeleteTopic(ctx context.Context, topic string) error {
	return b.sub.DeleteTopic(ctx, topic)
}

// QueueName is Subscriber.QueueName.
func (b *Backend) QueueName(topic, group string) string { return b.sub.QueueName(topic, group) }

// Health combines the reports of the Publisher and the Subscriber, and
// adds "rabbitmq nodes": how many of the nodes of Config.URLs accept a TCP
// connection (Value), unhealthy when none does and degraded when some do
// not. The clients move to another node within milliseconds when theirs
// dies, so only this check shows a cluster running on fewer nodes than
// configured (quorum queues one failure away from losing their majority).
func (b *Backend) Health(ctx context.Context) (*broker.HealthReport, error) {
	pr, _ := b.pub.Health(ctx)
	sr, _ := b.sub.Health(ctx)
	checks := append(pr.Checks, sr.Checks...)
	checks = append(checks, nodesCheck(ctx, b.sub.cfg.URLs, b.sub.cfg.DialTimeout))
	r := report(checks, sr.Lag)
	r.InFlight = sr.InFlight
	return r, nil
}

// Close stops every subscription (draining and acknowledging, see
// Subscriber.Close), then waits for the publishes in progress and closes
// the Publisher: subscriptions first, so that their last dead letters can
// still be published. Both Publish and Subscribe return broker.ErrClosed
// afterwards. Close is idempotent.
//
// It returns within a bound whatever is queued: the subscriptions stop
// within their Subscription.DrainTimeout (when their handlers return once
// their ctx is cancelled) and the subscriber connection closes within
// DialTimeout, then Publisher.Close takes at most Config.CloseTimeout plus
// DialTimeout. Its error is the Publisher's: nil,
// or the report that it gave up on unconfirmed messages.
func (b *Backend) Close() error {
	_ = b.sub.Close()
	return b.pub.Close()
}
