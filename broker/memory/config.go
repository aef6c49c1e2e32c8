package memory

import (
	"errors"
	"fmt"
	"log/slog"

	"github.com/cosmic-horizons/events/broker"
)

// Defaults of a Config; a zero field means its default.
const (
	// DefaultPartitions is the partition count of a topic Config.Topics
	// does not name.
	DefaultPartitions = 4
	// DefaultMaxMessageBytes is the largest Message.Size() Publish
	// accepts: 1 MiB, the Kafka default.
	DefaultMaxMessageBytes = 1 << 20
	// DefaultBufferSize is how many messages one partition holds.
	DefaultBufferSize = 1 << 16
)

// Config configures a Backend. The zero value of every field means its
// default, so Config{} is complete.
type Config struct {
	// Topics sets the partition count of the named topics (only Name and
	// Partitions are used), e.g. events.PlatformTopics(). Topics are still
	// created on first use.
	Topics []broker.TopicSpec
	// DefaultPartitions is the partition count of other topics, dead-letter
	// topics included; default DefaultPartitions.
	DefaultPartitions int32
	// MaxMessageBytes is the largest Message.Size() Publish accepts; a
	// larger message fails the whole call with broker.ErrMessageTooLarge.
	// Default DefaultMaxMessageBytes. Dead letters may be up to
	// broker.DeadLetterOverhead larger.
	MaxMessageBytes int
	// BufferSize is how many messages each partition holds; default
	// DefaultBufferSize. Memory grows with use. A partition full of
	// messages some group has not committed yet makes Publish wait (see
	// FailWhenFull); a partition no group needs the oldest message of drops
	// it to make room.
	BufferSize int
	// FailWhenFull makes Publish fail at once with an error matching
	// ErrBufferFull on a full partition, instead of waiting until a
	// consumer commits and frees room (or its ctx ends).
	FailWhenFull bool
	// Logger receives dead letters, discarded messages, drain timeouts;
	// default: nowhere.
	Logger *slog.Logger
	// Hooks observe and wrap publishing and every subscription (see
	// broker.Hook: metrics, tracing, de-duplication).
	Hooks []broker.Hook
}

// withDefaults returns c with zero fields replaced by the defaults.
func (c Config) withDefaults() Config {
	if c.DefaultPartitions == 0 {
		c.DefaultPartitions = DefaultPartitions
	}
	if c.MaxMessageBytes == 0 {
		c.MaxMessageBytes = DefaultMaxMessageBytes
	}
	if c.BufferSize == 0 {
		c.BufferSize = DefaultBufferSize
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
	for i, t := range c.Topics {
		if t.Name == "" || t.Partitions < 1 {
			errs = append(errs, fmt.Errorf("Topics[%d] needs a name and at least one partition, got %q with %d", i, t.Name, t.Partitions))
		}
	}
	if c.DefaultPartitions < 1 {
		errs = append(errs, fmt.Errorf("DefaultPartitions must be at least 1, got %d", c.DefaultPartitions))
	}
	if c.MaxMessageBytes < 1 {
		errs = append(errs, fmt.Errorf("MaxMessageBytes must be positive, got %d", c.MaxMessageBytes))
	}
	if c.BufferSize < 1 {
		errs = append(errs, fmt.Errorf("BufferSize must be positive, got %d", c.BufferSize))
	}
	if err := broker.ValidateHooks(c.Hooks); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("memory: invalid config: %w", errors.Join(errs...))
}

// partitionsOf returns the partition count of a new topic.
func (c *Config) partitionsOf(topic string) int32 {
	for _, t := range c.Topics {
		if t.Name == topic {
			return t.Partitions
		}
	}
	return c.DefaultPartitions
}
