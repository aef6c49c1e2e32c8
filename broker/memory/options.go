package memory

import (
	"log/slog"

	"github.com/cosmic-horizons/events/broker"
)

// Defaults of a Broker.
const (
	// DefaultPartitionCount is the partition count of a topic that is
	// neither a platform topic (broker.PlatformTopics) nor named by the
	// Topics option.
	DefaultPartitionCount = 4
	// DefaultMaxMessageSize is the largest Message.Size() Publish accepts:
	// 1 MiB, the Kafka default.
	DefaultMaxMessageSize = 1 << 20
	// DefaultBufferSize is how many messages one partition holds.
	DefaultBufferSize = 1 << 16
)

// Option configures a Broker; pass options to New.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

type config struct {
	partitions        map[string]int32
	defaultPartitions int32
	maxMessageSize    int
	bufferSize        int
	blockWhenFull     bool
	middleware        []broker.Middleware
	hooks             []broker.Hook
	logger            *slog.Logger
}

func newConfig(opts []Option) config {
	c := config{
		partitions:        make(map[string]int32),
		defaultPartitions: DefaultPartitionCount,
		maxMessageSize:    DefaultMaxMessageSize,
		bufferSize:        DefaultBufferSize,
		blockWhenFull:     true,
	}
	for _, t := range broker.PlatformTopics() {
		c.partitions[t.Name] = t.Partitions
	}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if c.logger == nil {
		c.logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// partitionsOf returns the partition count of a new topic.
func (c *config) partitionsOf(topic string) int32 {
	if n, ok := c.partitions[topic]; ok {
		return n
	}
	return c.defaultPartitions
}

// Topics sets the partition count of the named topics, overriding the
// catalogue counts of the platform topics (which apply without this
// option: job-lifecycle 10, job-metrics 10, notifications 5, audit-trail 5,
// system-health 3). Only Name and Partitions are used; a spec with fewer
// than one partition is ignored. Topics are still created on first use.
func Topics(specs ...broker.TopicSpec) Option {
	return optionFunc(func(c *config) {
		for _, s := range specs {
			if s.Name != "" && s.Partitions > 0 {
				c.partitions[s.Name] = s.Partitions
			}
		}
	})
}

// DefaultPartitions sets the partition count of topics neither in the
// platform catalogue nor named by Topics, dead-letter topics included;
// default DefaultPartitionCount. n < 1 keeps the default.
func DefaultPartitions(n int32) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.defaultPartitions = n
		}
	})
}

// MaxMessageSize sets the largest Message.Size() Publish accepts; a larger
// message fails the whole call with broker.ErrMessageTooLarge. Default
// DefaultMaxMessageSize; n < 1 keeps the default.
func MaxMessageSize(n int) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.maxMessageSize = n
		}
	})
}

// BufferSize sets how many messages each partition holds; default
// DefaultBufferSize, n < 1 keeps the default. Memory for the buffer grows
// with use. A partition that is full of messages some group has not yet
// committed makes Publish wait (see BlockWhenFull); a partition no group
// needs the oldest message of drops it to make room.
func BufferSize(n int) Option {
	return optionFunc(func(c *config) {
		if n > 0 {
			c.bufferSize = n
		}
	})
}

// BlockWhenFull says what Publish does when a partition is full of
// messages some group still needs. true (the default): it waits until a
// consumer commits and frees room, or until its ctx ends. false: it fails
// at once with an error matching ErrBufferFull.
func BlockWhenFull(block bool) Option {
	return optionFunc(func(c *config) { c.blockWhenFull = block })
}

// Middleware adds middleware that wraps every subscription's handler,
// outermost, first listed first (broker.Pipeline.Middleware): tracing,
// metrics, de-duplication. Repeated options accumulate.
func Middleware(mws ...broker.Middleware) Option {
	return optionFunc(func(c *config) { c.middleware = append(c.middleware, mws...) })
}

// Hooks adds hooks that observe publishing (broker.HookPublished, called at
// the end of every Publish) and consumption (handler attempts, retries,
// dead letters, discards). Repeated options accumulate.
func Hooks(hooks ...broker.Hook) Option {
	return optionFunc(func(c *config) { c.hooks = append(c.hooks, hooks...) })
}

// Logger sets where the broker logs dead letters, discarded messages and
// drain timeouts; default: nowhere.
func Logger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.logger = l })
}
