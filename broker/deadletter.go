package broker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// DeadLetterConfig configures the DeadLetter middleware.
type DeadLetterConfig struct {
	// Publisher receives dead letters. Required.
	Publisher Publisher
	// Topic returns the dead-letter topic of a message; default
	// DeadLetterTopic(m.Topic), i.e. "<topic>.dlq".
	Topic func(m *Message) string
	// Group is recorded in HeaderDLQGroup.
	Group string
	// RetryBackoff is the wait between attempts to publish a dead letter
	// that failed; default 1s. Attempts go on until ctx ends.
	RetryBackoff time.Duration
	// Now returns the time recorded in HeaderDLQTime; default time.Now.
	Now func() time.Time
	// Logger receives a warning per dead letter; default: discard.
	Logger *slog.Logger
	// Hooks are told of every dead letter (HookDeadLetter).
	Hooks []Hook
}

// DeadLetter publishes a message whose handler returned an error to its
// dead-letter topic, with the original key, body and headers plus the error
// (HeaderDLQError), the attempt count, the time, the original topic, group,
// partition and offset; then it returns nil so the original is acknowledged
// and consumption goes on. If the dead-letter publish fails it is retried
// until ctx ends; then the handler error is returned and the message is not
// acknowledged. When ctx has ended by the time the handler fails (the
// subscription is stopping), nothing is dead-lettered and the error is
// returned: the message will be delivered again. Place it outside Retry so it sees only the final error.
func DeadLetter(cfg DeadLetterConfig) Middleware {
	if cfg.Topic == nil {
		cfg.Topic = func(m *Message) string { return DeadLetterTopic(m.Topic) }
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	hs := Hooks(cfg.Hooks)
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			herr := next(ctx, m)
			if herr == nil {
				return nil
			}
			if ctx.Err() != nil {
				// The subscription is stopping (or the handler ran out of
				// time at shutdown): leave the message unacknowledged so it
				// is delivered again, rather than dead-letter a message that
				// did not really fail.
				return herr
			}
			if cfg.Publisher == nil {
				return errors.Join(herr, errors.New("broker: DeadLetter has no Publisher"))
			}
			dl := DeadLetterMessage(m, cfg.Topic(m), cfg.Group, herr, cfg.Now())
			for {
				err := cfg.Publisher.Publish(ctx, dl)
				if err == nil {
					cfg.Logger.WarnContext(ctx, "message dead-lettered",
						"topic", m.Topic, "dlq", dl.Topic, "key", m.Key, "id", m.Header(HeaderID),
						"attempts", m.Delivery.Attempt, "error", herr)
					hs.deadLetter(ctx, m, herr)
					return nil
				}
				cfg.Logger.ErrorContext(ctx, "dead-letter publish failed", "dlq", dl.Topic, "error", err)
				t := time.NewTimer(cfg.RetryBackoff)
				select {
				case <-ctx.Done():
					t.Stop()
					return fmt.Errorf("%w (dead-letter publish failed: %w)", herr, err)
				case <-t.C:
				}
			}
		}
	}
}

// DeadLetterMessage returns the dead letter of m for topic: a copy with the
// dead-letter headers added.
func DeadLetterMessage(m *Message, topic, group string, cause error, at time.Time) *Message {
	dl := &Message{Topic: topic, Key: m.Key, Body: m.Body, Headers: make(map[string]string, len(m.Headers)+8)}
	for k, v := range m.Headers {
		dl.Headers[k] = v
	}
	dl.Headers[HeaderDLQError] = cause.Error()
	dl.Headers[HeaderDLQAttempts] = strconv.Itoa(max(m.Delivery.Attempt, 1))
	dl.Headers[HeaderDLQTime] = at.UTC().Format(time.RFC3339Nano)
	dl.Headers[HeaderDLQTopic] = m.Topic
	if group != "" {
		dl.Headers[HeaderDLQGroup] = group
	}
	if m.Delivery.Partition >= 0 && m.Delivery.Offset >= 0 {
		dl.Headers[HeaderDLQPartition] = strconv.Itoa(int(m.Delivery.Partition))
		dl.Headers[HeaderDLQOffset] = strconv.FormatInt(m.Delivery.Offset, 10)
	}
	if IsPermanent(cause) {
		dl.Headers[HeaderDLQPermanent] = "true"
	}
	return dl
}
