package rabbitbus

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/cosmic-horizons/events/broker"
)

// Queue types for Config.QueueType.
const (
	// QueueQuorum is a replicated Raft queue: it survives the loss of a
	// minority of the cluster's nodes. The default for durable groups.
	QueueQuorum = "quorum"
	// QueueClassic is a single-node queue: faster on one node, lost with
	// its node. For single-node brokers and tests.
	QueueClassic = "classic"
)

// Defaults of a Config.
const (
	DefaultHeartbeat           = 2 * time.Second
	DefaultDialTimeout         = 5 * time.Second
	DefaultReconnectBackoffMin = 100 * time.Millisecond
	DefaultReconnectBackoffMax = 5 * time.Second
	DefaultPublishChannels     = 2
	DefaultConfirmWindow       = 1024
	DefaultMaxMessageBytes     = 1 << 20
	DefaultSetupTimeout        = 30 * time.Second
	DefaultNackRetry           = 30 * time.Second
	DefaultCloseTimeout        = 30 * time.Second
	// BrokerMaxMessageBytes is RabbitMQ's own ceiling on a message body
	// (max_message_size, 128 MiB); Config.MaxMessageBytes cannot exceed it.
	BrokerMaxMessageBytes = 128 << 20
)

// Config configures a Backend, Publisher or Subscriber. The zero value of
// every field but URLs means its default; ConfigFromEnv fills it from the
// environment. A Config is copied by the constructors: changing it afterwards
// has no effect.
type Config struct {
	// URLs of the cluster's nodes (amqp://user:pass@host:5672/vhost or
	// amqps://…). Required. The first that answers is used; on connection
	// loss the client reconnects to the next one in the list (round robin),
	// so list every node of the cluster. Heartbeat and connection_timeout
	// query parameters of a URL override Heartbeat and DialTimeout.
	URLs []string
	// TLS configures amqps:// connections; nil uses the system roots and the
	// URL's host as server name. Ignored for amqp:// URLs.
	TLS *tls.Config
	// Heartbeat is the AMQP heartbeat interval the client asks for; default
	// 2s. A connection whose peer stays silent for about three intervals is
	// treated as lost, so a black-holed network is noticed in seconds (the
	// library default of 10s takes ~30s).
	Heartbeat time.Duration
	// DialTimeout bounds the TCP connect, TLS and AMQP handshake with one
	// node; default 5s.
	DialTimeout time.Duration
	// ReconnectBackoffMin and ReconnectBackoffMax bound the wait between
	// rounds of reconnect attempts (one attempt per URL per round); the
	// wait doubles from Min up to Max, with ±20% jitter. The first round
	// starts at once. Defaults 100ms and 5s. Reconnecting goes on until
	// Close; only the first connection, in the constructor, fails fast.
	ReconnectBackoffMin time.Duration
	ReconnectBackoffMax time.Duration
	// SetupTimeout bounds how long Subscribe, DeclareGroup and the other
	// topology calls wait for a connection and for the broker's answers;
	// default 30s.
	SetupTimeout time.Duration
	// PublishChannels is the number of confirm-mode channels publishing
	// shares; default 2 (more spread the broker's work over more Erlang processes, which on a small broker costs more than it gains). Each Publish call uses one channel for all of its
	// messages, so their order is kept.
	PublishChannels int
	// ConfirmWindow bounds the messages published on one channel and not
	// yet confirmed; Publish waits for room beyond it. Default 1024.
	ConfirmWindow int
	// NackRetry is how long Publish keeps sending again a message the
	// broker nacked (a quorum queue without a leader during a failover
	// nacks at once), counted from the call's first nack; then the message
	// fails with ErrNacked. Default 30s; negative: never re-send.
	NackRetry time.Duration
	// CloseTimeout bounds how long Close waits for the Publish calls in
	// progress to get their confirms. When it passes, Close stops waiting:
	// the messages not confirmed fail with an error matching
	// broker.ErrClosed (the Publish calls waiting for them return it; such
	// messages may or may not have arrived), the connection is closed
	// (within DialTimeout), and Close returns an error saying so. Default
	// 30s; it must not be negative.
	CloseTimeout time.Duration
	// MaxMessageBytes is the largest Message.Size() Publish accepts; larger
	// messages fail with broker.ErrMessageTooLarge before anything is sent.
	// Default 1 MiB, at most BrokerMaxMessageBytes.
	MaxMessageBytes int
	// QueueType of durable group queues and their dead-letter queues:
	// QueueQuorum (default) or QueueClassic. It is fixed when a queue is
	// first declared; declaring it again with another type fails with a
	// *TopologyError.
	QueueType string
	// DeliveryLimit sets x-delivery-limit on quorum group queues: a message
	// returned to its queue more often than this (crashing consumers,
	// OnFailureStop) is dead-lettered to "<queue>.dlq" by the broker.
	// 0 (the default) means no limit.
	DeliveryLimit int
	// SingleActiveConsumer declares durable group queues with
	// x-single-active-consumer: of the members of a group only one consumes
	// at a time, the others stand by. It gives per-key order across
	// members, which competing consumers do not have, at the cost of
	// parallelism across processes (use Subscription.Concurrency within
	// one). Fixed when the queue is first declared.
	SingleActiveConsumer bool
	// QueueName returns the queue of a durable group on a topic; default
	// "<topic>.<group>" (shortened with a hash when over 230 bytes). The
	// topic is part of the name because one group may consume several
	// topics, and a queue bound to two exchanges would mix them.
	QueueName func(topic, group string) string
	// DropUnroutable lists topics whose messages may be published with no
	// queue to take them (live views nobody watches): such a message is
	// confirmed and dropped instead of failing with broker.ErrUnroutable.
	// "*" means every topic.
	DropUnroutable []string
	// ConnectionName is shown by the broker (rabbitmqctl list_connections
	// client_properties, management UI); the role ("publisher",
	// "subscriber") is appended. Default "rabbitbus".
	ConnectionName string
	// Logger receives connection state changes, reconnects, dead letters
	// and discarded messages; nil is silent.
	Logger *slog.Logger
	// Hooks observe publishing and the consumption pipeline, and wrap
	// every subscription's handler (see broker.Hook: metrics, tracing,
	// de-duplication), and observe connection state (HookConnection). The
	// constructors refuse a value that is none of these.
	Hooks []broker.Hook
	// LagGroups names durable groups whose queues Health reads besides
	// the subscriptions of this process (each queue's ready messages are
	// its lag, as for the groups this process consumes with), e.g. the
	// groups of other services a health service watches. A queue not
	// declared yet is reported as an unknown check, not a failure.
	LagGroups []LagGroup
	// AMQP, if set, adjusts the amqp091 configuration of each dial (an
	// escape hatch: SASL mechanisms, frame size, channel max, properties).
	AMQP func(cfg *amqp.Config)
}

// LagGroup is a durable group on a topic: the queue Config.QueueName
// names.
type LagGroup struct {
	Topic, Group string
}

// withDefaults returns c with zero fields replaced by the defaults and the
// slices copied, so the caller's Config is never shared.
func (c Config) withDefaults() Config {
	c.URLs = append([]string(nil), c.URLs...)
	c.DropUnroutable = append([]string(nil), c.DropUnroutable...)
	c.LagGroups = append([]LagGroup(nil), c.LagGroups...)
	c.Hooks = append([]broker.Hook(nil), c.Hooks...)
	if c.TLS != nil {
		c.TLS = c.TLS.Clone()
	}
	if c.Heartbeat == 0 {
		c.Heartbeat = DefaultHeartbeat
	}
	if c.DialTimeout == 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	if c.ReconnectBackoffMin == 0 {
		c.ReconnectBackoffMin = DefaultReconnectBackoffMin
	}
	if c.ReconnectBackoffMax == 0 {
		c.ReconnectBackoffMax = max(DefaultReconnectBackoffMax, c.ReconnectBackoffMin)
	}
	if c.SetupTimeout == 0 {
		c.SetupTimeout = DefaultSetupTimeout
	}
	if c.PublishChannels == 0 {
		c.PublishChannels = DefaultPublishChannels
	}
	if c.ConfirmWindow == 0 {
		c.ConfirmWindow = DefaultConfirmWindow
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.NackRetry == 0 {
		c.NackRetry = DefaultNackRetry
	}
	if c.CloseTimeout == 0 {
		c.CloseTimeout = DefaultCloseTimeout
	}
	if c.QueueType == "" {
		c.QueueType = QueueQuorum
	}
	if c.QueueName == nil {
		c.QueueName = DefaultQueueName
	}
	if c.ConnectionName == "" {
		c.ConnectionName = "rabbitbus"
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports every problem of c (after defaults) in one error.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	if len(c.URLs) == 0 {
		errs = append(errs, errors.New("URLs: at least one node URL is required (AMQP_URLS or AMQP_URL)"))
	}
	for i, u := range c.URLs {
		if err := validURL(u); err != nil {
			errs = append(errs, fmt.Errorf("URLs[%d] %s: %w", i, redact(u), err))
		}
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"Heartbeat", c.Heartbeat}, {"DialTimeout", c.DialTimeout}, {"SetupTimeout", c.SetupTimeout},
		{"ReconnectBackoffMin", c.ReconnectBackoffMin}, {"ReconnectBackoffMax", c.ReconnectBackoffMax},
		{"CloseTimeout", c.CloseTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s must not be negative, got %v", d.name, d.v))
		}
	}
	if c.Heartbeat > 0 && c.Heartbeat < time.Second {
		errs = append(errs, fmt.Errorf("Heartbeat must be at least 1s (the AMQP unit), got %v", c.Heartbeat))
	}
	if c.ReconnectBackoffMax < c.ReconnectBackoffMin {
		errs = append(errs, fmt.Errorf("ReconnectBackoffMax %v is below ReconnectBackoffMin %v", c.ReconnectBackoffMax, c.ReconnectBackoffMin))
	}
	if c.PublishChannels < 1 {
		errs = append(errs, fmt.Errorf("PublishChannels must be at least 1, got %d", c.PublishChannels))
	}
	if c.ConfirmWindow < 1 {
		errs = append(errs, fmt.Errorf("ConfirmWindow must be at least 1, got %d", c.ConfirmWindow))
	}
	if c.MaxMessageBytes < 1 || c.MaxMessageBytes > BrokerMaxMessageBytes {
		errs = append(errs, fmt.Errorf("MaxMessageBytes must be between 1 and %d (RabbitMQ's limit), got %d", BrokerMaxMessageBytes, c.MaxMessageBytes))
	}
	switch c.QueueType {
	case QueueQuorum, QueueClassic:
	default:
		errs = append(errs, fmt.Errorf("QueueType must be %q or %q, got %q", QueueQuorum, QueueClassic, c.QueueType))
	}
	if c.DeliveryLimit < 0 {
		errs = append(errs, fmt.Errorf("DeliveryLimit must not be negative, got %d", c.DeliveryLimit))
	}
	if c.DeliveryLimit > 0 && c.QueueType != QueueQuorum {
		errs = append(errs, fmt.Errorf("DeliveryLimit needs QueueType %q (x-delivery-limit is a quorum queue argument)", QueueQuorum))
	}
	if err := broker.ValidateHooks(c.Hooks, isConnectionHook); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("rabbitbus: invalid config: %w", errors.Join(errs...))
}

func validURL(raw string) error {
	u, err := amqp.ParseURI(raw)
	if err != nil {
		return err
	}
	if u.Host == "" {
		return errors.New("no host")
	}
	return nil
}

// redact returns raw with its password replaced, for logs and errors.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "<unparsable URL>"
	}
	return u.Redacted()
}

// dropsUnroutable reports whether Config.DropUnroutable covers topic.
func (c *Config) dropsUnroutable(topic string) bool {
	for _, t := range c.DropUnroutable {
		if t == "*" || t == topic {
			return true
		}
	}
	return false
}
