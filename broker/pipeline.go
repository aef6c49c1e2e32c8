package broker

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Pipeline assembles the handler chain every backend runs for a
// subscription, so retries, dead letters and failure policies behave the same
// on memory, Kafka and RabbitMQ. From the outside in:
//
//	Middleware… → event-type filter → failure policy → Retry → Timeout → hooks → Recover → skip → handler
//
// The hooks step tells HookHandled of every attempt, a panicking one
// included (as a *PanicError). The skip step turns a handler's ErrSkipped
// into an acknowledgement (no retry, no dead letter) and tells HookSkipped.
//
// The failure policy is the DeadLetter middleware (OnFailureDeadLetter), a
// log-and-acknowledge step (OnFailureDiscard), or nothing (OnFailureStop: the
// error reaches the backend, which stops the subscription without
// acknowledging the message).
type Pipeline struct {
	// Subscription supplies the retry policy, timeout, filter and failure
	// policy; its defaults are applied.
	Subscription Subscription
	// DeadLetters receives dead letters; required for OnFailureDeadLetter.
	DeadLetters Publisher
	// DeadLetterMaxSize is the largest dead letter DeadLetters accepts
	// (DeadLetterConfig.MaxSize): the backend's message size limit plus
	// DeadLetterOverhead. 0 means no limit.
	DeadLetterMaxSize int
	// Middleware runs outermost, first listed first, once per message:
	// Tracing, for instance. It sees the outcome after retries and the
	// failure policy (a dead-lettered message is a nil). Dedupe does not
	// belong here but around the handler (see Dedupe); metrics come as
	// Hooks.
	Middleware []Middleware
	// Hooks observe attempts, retries, dead letters and discards.
	Hooks []Hook
	// Logger receives dead-letter and discard records; default: discard.
	Logger *slog.Logger
}

// Wrap returns h inside the pipeline.
func (p Pipeline) Wrap(h Handler) Handler {
	sub := p.Subscription.WithDefaults()
	logger := p.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	hs := Hooks(p.Hooks)
	chain := []Middleware{}
	chain = append(chain, p.Middleware...)
	if len(sub.EventTypes) > 0 {
		chain = append(chain, filter(&sub))
	}
	switch sub.OnFailure {
	case OnFailureDeadLetter:
		chain = append(chain, DeadLetter(DeadLetterConfig{
			Publisher: p.DeadLetters, Group: sub.Group, MaxSize: p.DeadLetterMaxSize,
			Fallback: sub.DeadLetterFallback, Logger: logger, Hooks: p.Hooks,
		}))
	case OnFailureDiscard:
		chain = append(chain, discard(sub.Group, logger, hs))
	}
	chain = append(chain, Retry(sub.Retry, p.Hooks...), Timeout(sub.HandlerTimeout))
	if len(hs) > 0 {
		// Outside Recover, so that an attempt that panicked is observed
		// (as its *PanicError) like any other failed attempt.
		chain = append(chain, observe(hs))
	}
	chain = append(chain, Recover(), skip(hs))
	return Chain(h, chain...)
}

// skip acknowledges a message the handler skipped on purpose.
func skip(hs Hooks) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			err := next(ctx, m)
			if err != nil && errors.Is(err, ErrSkipped) {
				hs.skipped(ctx, m, err)
				return nil
			}
			return err
		}
	}
}

func filter(sub *Subscription) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			if !sub.Matches(m.Header(HeaderType)) {
				return nil
			}
			return next(ctx, m)
		}
	}
}

func discard(group string, logger *slog.Logger, hs Hooks) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			err := next(ctx, m)
			if err == nil || ctx.Err() != nil {
				return err // stopping: leave it unacknowledged
			}
			logger.ErrorContext(ctx, "message discarded after handler failure",
				"topic", m.Topic, "group", group, "key", m.Key, "id", m.Header(HeaderID),
				"attempts", m.Delivery.Attempt, "error", err)
			hs.discard(ctx, m, err)
			return nil
		}
	}
}

func observe(hs Hooks) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			start := time.Now()
			err := next(ctx, m)
			hs.handled(ctx, m, time.Since(start), err)
			return err
		}
	}
}
