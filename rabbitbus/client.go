package rabbitbus

import (
	"context"
	"fmt"

	"github.com/cosmic-horizons/events/broker"
)

// Client is a Publisher and a Subscriber on one configuration: a
// broker.Backend and a broker.HealthChecker. Publishing and consuming use
// separate connections (RabbitMQ blocks a publishing connection under a
// resource alarm; acknowledgements must still flow), and dead letters go
// through the Client's Publisher. Safe for concurrent use.
type Client struct {
	pub *Publisher
	sub *Subscriber
}

var (
	_ broker.Backend       = (*Client)(nil)
	_ broker.HealthChecker = (*Client)(nil)
	_ broker.Publisher     = (*Publisher)(nil)
	_ broker.Subscriber    = (*Subscriber)(nil)
	_ broker.Consumer      = (*Consumer)(nil)
)

// New validates cfg (after applying opts) and connects a Publisher and a
// Subscriber, each to the first node of cfg.URLs that answers. The first
// connection fails fast: when no node accepts it, New returns a
// *ConnectError (matching ErrConnect, and ErrAccessRefused for refused
// credentials) after trying each URL once. Later losses are retried
// forever, with backoff, until Close.
func New(ctx context.Context, cfg Config, opts ...Option) (*Client, error) {
	for _, o := range opts {
		o(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("rabbitbus: invalid config: %w", err)
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
	return &Client{pub: pub, sub: sub}, nil
}

// Publisher returns the Client's Publisher.
func (c *Client) Publisher() *Publisher { return c.pub }

// Subscriber returns the Client's Subscriber.
func (c *Client) Subscriber() *Subscriber { return c.sub }

// Publish is Publisher.Publish.
func (c *Client) Publish(ctx context.Context, msgs ...*broker.Message) error {
	return c.pub.Publish(ctx, msgs...)
}

// Subscribe is Subscriber.Subscribe.
func (c *Client) Subscribe(ctx context.Context, sub broker.Subscription, h broker.Handler) (broker.Consumer, error) {
	return c.sub.Subscribe(ctx, sub, h)
}

// DeclareGroup is Subscriber.DeclareGroup.
func (c *Client) DeclareGroup(ctx context.Context, sub broker.Subscription) error {
	return c.sub.DeclareGroup(ctx, sub)
}

// DeleteGroup is Subscriber.DeleteGroup.
func (c *Client) DeleteGroup(ctx context.Context, topic, group string) error {
	return c.sub.DeleteGroup(ctx, topic, group)
}

// DeleteTopic is Subscriber.DeleteTopic.
func (c *Client) DeleteTopic(ctx context.Context, topic string) error {
	return c.sub.DeleteTopic(ctx, topic)
}

// QueueName is Subscriber.QueueName.
func (c *Client) QueueName(topic, group string) string { return c.sub.QueueName(topic, group) }

// Health combines the reports of the Publisher and the Subscriber.
func (c *Client) Health(ctx context.Context) (*broker.HealthReport, error) {
	pr, _ := c.pub.Health(ctx)
	sr, _ := c.sub.Health(ctx)
	checks := append(pr.Checks, sr.Checks...)
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
func (c *Client) Close() error {
	_ = c.sub.Close()
	return c.pub.Close()
}
