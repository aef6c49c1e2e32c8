package broker

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"
	"unicode/utf8"
)

// Bounds of a dead letter.
const (
	// DeadLetterOverhead is the most the dead-letter headers add to a
	// message's Size: a dead letter of a message a backend accepted is at
	// most the backend's size limit plus DeadLetterOverhead. Backends
	// accept dead letters up to that size, and provision dead-letter
	// topics and queues to hold them.
	DeadLetterOverhead = 4 << 10
	// MaxDeadLetterErrorBytes bounds HeaderDLQError: a longer error is cut
	// at a UTF-8 boundary and ends with "…[truncated]".
	MaxDeadLetterErrorBytes = 1 << 10
	// maxDeadLetterNameBytes bounds the topic and group names recorded.
	maxDeadLetterNameBytes = 255
)

// DeadLetterFallback is what a subscription does with a message whose
// dead letter cannot be written for a reason retrying cannot fix (too
// large even without its body, unroutable, not authorised, invalid).
type DeadLetterFallback int

const (
	// FallbackStop stops the subscription without acknowledging the
	// message: Consumer.Err is a *HandlerError wrapping a *DeadLetterError.
	// Nothing is lost; the message comes back when the group resumes, so
	// the dead-letter destination must be fixed first. The default.
	FallbackStop DeadLetterFallback = iota
	// FallbackDiscard logs the message at ERROR (topic, key, ID, the
	// handler error and the publish error), tells HookDeadLetterFailed,
	// acknowledges it and goes on. The message is lost.
	FallbackDiscard
)

// String returns "stop" or "discard".
func (f DeadLetterFallback) String() string {
	switch f {
	case FallbackStop:
		return "stop"
	case FallbackDiscard:
		return "discard"
	}
	return fmt.Sprintf("DeadLetterFallback(%d)", int(f))
}

// DeadLetterError is the error of a message whose dead letter could not be
// written for good (see DeadLetterFallback).
type DeadLetterError struct {
	// Topic is the dead-letter topic.
	Topic string
	// HandlerErr is the handler's error that sent the message there.
	HandlerErr error
	// PublishErr is why the dead letter was refused.
	PublishErr error
}

// Error names the dead-letter topic and both errors.
func (e *DeadLetterError) Error() string {
	return fmt.Sprintf("broker: dead letter to %q refused (%v) for handler error: %v", e.Topic, e.PublishErr, e.HandlerErr)
}

// Unwrap returns the publish error and the handler error.
func (e *DeadLetterError) Unwrap() []error { return []error{e.PublishErr, e.HandlerErr} }

// DeadLetterConfig configures the DeadLetter middleware.
type DeadLetterConfig struct {
	// Publisher receives dead letters. Required.
	Publisher Publisher
	// Topic returns the dead-letter topic of a message; default
	// DeadLetterTopic(m.Topic), i.e. "<topic>.dlq".
	Topic func(m *Message) string
	// Group is recorded in HeaderDLQGroup.
	Group string
	// MaxSize is the largest dead letter (Message.Size) Publisher takes.
	// A dead letter over it is published without its body, which is
	// replaced by HeaderDLQBodySize and HeaderDLQBodySHA256. 0 means no
	// limit.
	MaxSize int
	// Fallback says what happens when the dead letter is refused for good;
	// default FallbackStop.
	Fallback DeadLetterFallback
	// RetryBackoff is the first wait between attempts to publish a dead
	// letter that failed for a transient reason; it doubles up to
	// MaxRetryBackoff. Attempts go on until ctx ends. Default 100ms.
	RetryBackoff time.Duration
	// MaxRetryBackoff caps the wait; default 10s.
	MaxRetryBackoff time.Duration
	// Now returns the time recorded in HeaderDLQTime; default time.Now.
	Now func() time.Time
	// Logger receives a warning per dead letter and an error per refused
	// one; default: discard.
	Logger *slog.Logger
	// Hooks are told of every dead letter (HookDeadLetter) and every dead
	// letter refused for good (HookDeadLetterFailed).
	Hooks []Hook
}

// DeadLetter publishes a message whose handler returned an error to its
// dead-letter topic, with the original key, body and headers plus the error
// (HeaderDLQError, bounded by MaxDeadLetterErrorBytes), the attempt count,
// the time, the original topic, group, partition and offset; then it
// returns nil so the original is acknowledged and consumption goes on.
//
// A dead letter over cfg.MaxSize, or refused by the publisher as too
// large, goes without its body (see DropBody). A publish that fails for a transient reason is
// retried with exponential backoff until ctx ends; then the handler error
// is returned and the message is not acknowledged. A publish refused for
// good (IsPermanentPublishError) is not retried: it is logged, told to
// HookDeadLetterFailed, and cfg.Fallback applies (a *DeadLetterError
// stops the subscription, or the message is discarded).
//
// When ctx has ended by the time the handler fails (the subscription is
// stopping), nothing is dead-lettered and the error is returned: the
// message will be delivered again. Place it outside Retry so it sees only
// the final error.
func DeadLetter(cfg DeadLetterConfig) Middleware {
	if cfg.Topic == nil {
		cfg.Topic = func(m *Message) string { return DeadLetterTopic(m.Topic) }
	}
	if cfg.RetryBackoff <= 0 {
		cfg.RetryBackoff = 100 * time.Millisecond
	}
	if cfg.MaxRetryBackoff < cfg.RetryBackoff {
		cfg.MaxRetryBackoff = max(10*time.Second, cfg.RetryBackoff)
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
			if cfg.MaxSize > 0 && dl.Size() > cfg.MaxSize {
				DropBody(dl)
			}
			backoff := cfg.RetryBackoff
			for {
				err := cfg.Publisher.Publish(ctx, dl)
				if err == nil {
					cfg.Logger.WarnContext(ctx, "message dead-lettered",
						"topic", m.Topic, "dlq", dl.Topic, "key", m.Key, "id", m.Header(HeaderID),
						"attempts", m.Delivery.Attempt, "body_dropped", dl.Header(HeaderDLQBodySize) != "", "error", herr)
					hs.deadLetter(ctx, m, herr)
					return nil
				}
				if errors.Is(err, ErrMessageTooLarge) && len(dl.Body) > 0 {
					// The destination measures size its own way: send the
					// record of the failure without the body.
					DropBody(dl)
					continue
				}
				if IsPermanentPublishError(err) {
					return refused(ctx, &cfg, hs, m, &DeadLetterError{Topic: dl.Topic, HandlerErr: herr, PublishErr: err})
				}
				if ctx.Err() != nil || errors.Is(err, ErrClosed) {
					return fmt.Errorf("%w (dead-letter publish failed: %w)", herr, err)
				}
				cfg.Logger.ErrorContext(ctx, "dead-letter publish failed; retrying", "dlq", dl.Topic, "retry_in", backoff, "error", err)
				t := time.NewTimer(backoff)
				select {
				case <-ctx.Done():
					t.Stop()
					return fmt.Errorf("%w (dead-letter publish failed: %w)", herr, err)
				case <-t.C:
				}
				backoff = min(2*backoff, cfg.MaxRetryBackoff)
			}
		}
	}
}

// refused applies the fallback to a message whose dead letter was refused
// for good.
func refused(ctx context.Context, cfg *DeadLetterConfig, hs Hooks, m *Message, dlerr *DeadLetterError) error {
	cfg.Logger.ErrorContext(ctx, "dead letter refused; applying the fallback",
		"topic", m.Topic, "dlq", dlerr.Topic, "group", cfg.Group, "key", m.Key, "id", m.Header(HeaderID),
		"attempts", m.Delivery.Attempt, "fallback", cfg.Fallback.String(),
		"error", dlerr.HandlerErr, "publish_error", dlerr.PublishErr)
	hs.deadLetterFailed(ctx, m, dlerr.HandlerErr, dlerr.PublishErr)
	if cfg.Fallback == FallbackDiscard {
		return nil
	}
	return dlerr
}

// DeadLetterMessage returns the dead letter of m for topic: a copy with the
// dead-letter headers added. The error is cut to MaxDeadLetterErrorBytes
// and the recorded topic and group names to 255 bytes, so the headers add
// at most DeadLetterOverhead to m's Size.
func DeadLetterMessage(m *Message, topic, group string, cause error, at time.Time) *Message {
	dl := &Message{Topic: topic, Key: m.Key, Body: m.Body, Headers: make(Headers, 0, len(m.Headers)+9)}
	dl.Headers = append(dl.Headers, m.Headers...)
	set := dl.Headers.Set
	set(HeaderDLQError, truncateUTF8(cause.Error(), MaxDeadLetterErrorBytes, "…[truncated]"))
	set(HeaderDLQAttempts, strconv.Itoa(max(m.Delivery.Attempt, 1)))
	set(HeaderDLQTime, at.UTC().Format(time.RFC3339Nano))
	set(HeaderDLQTopic, truncateUTF8(m.Topic, maxDeadLetterNameBytes, ""))
	if group != "" {
		set(HeaderDLQGroup, truncateUTF8(group, maxDeadLetterNameBytes, ""))
	}
	if m.Delivery.Partition >= 0 && m.Delivery.Offset >= 0 {
		set(HeaderDLQPartition, strconv.Itoa(int(m.Delivery.Partition)))
		set(HeaderDLQOffset, strconv.FormatInt(m.Delivery.Offset, 10))
	}
	if IsPermanent(cause) {
		set(HeaderDLQPermanent, "true")
	}
	return dl
}

// DropBody replaces the body of dead letter dl by its size
// (HeaderDLQBodySize) and SHA-256 (HeaderDLQBodySHA256, hex): for a message
// too large to be dead-lettered whole, so that the record of its failure
// is kept and the body can be matched with a copy elsewhere.
func DropBody(dl *Message) {
	sum := sha256.Sum256(dl.Body)
	dl.SetHeader(HeaderDLQBodySize, strconv.Itoa(len(dl.Body)))
	dl.SetHeader(HeaderDLQBodySHA256, hex.EncodeToString(sum[:]))
	dl.Body = nil
}

// truncateUTF8 returns s cut to at most n bytes at a rune boundary, with
// marker appended (within n) when it was cut.
func truncateUTF8(s string, n int, marker string) string {
	if len(s) <= n {
		return s
	}
	cut := n - len(marker)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:max(cut, 0)] + marker
}
