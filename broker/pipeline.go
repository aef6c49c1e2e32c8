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
//	message wrappers… → event-type filter → failure policy → Retry → Timeout → observers → Recover → skip → attempt wrappers… → handler
//
// The wrappers are the hooks implementing HookWrapMessage and
// HookWrapAttempt, in list order. The observers step tells HookHandled of
// every attempt, a panicking one included (as a *PanicError). The skip step
// turns ErrSkipped (a handler not taking a message) and ErrDuplicate
// (Dedupe) into an acknowledgement, no retry, no dead letter, and tells
// HookSkipped or HookDuplicate.
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
	// Hooks observe and wrap the handling (see Hook); the Subscription's
	// own Hooks come after them.
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
	hs := Hooks(append(append([]Hook(nil), p.Hooks...), sub.Hooks...))
	chain := []Middleware{}
	var inner []Middleware
	for _, h := range hs {
		if w, ok := h.(HookWrapMessage); ok {
			chain = append(chain, w.WrapMessage)
		}
		if w, ok := h.(HookWrapAttempt); ok {
			inner = append(inner, w.WrapAttempt)
		}
	}
	if len(sub.EventTypes) > 0 {
		chain = append(chain, filter(&sub))
	}
	switch sub.OnFailure {
	case OnFailureDeadLetter:
		chain = append(chain, DeadLetter(DeadLetterConfig{
			Publisher: p.DeadLetters, Group: sub.Group, MaxSize: p.DeadLetterMaxSize,
			Fallback: sub.DeadLetterFallback, Logger: logger, Hooks: hs,
		}))
	case OnFailureDiscard:
		chain = append(chain, discard(sub.Group, logger, hs))
	}
	chain = append(chain, Retry(sub.Retry, hs...), Timeout(sub.HandlerTimeout))
	if len(hs) > 0 {
		// Outside Recover, so that an attempt that panicked is observed
		// (as its *PanicError) like any other failed attempt.
		chain = append(chain, observe(hs))
	}
	chain = append(chain, Recover(), skip(hs))
	chain = append(chain, inner...)
	return Chain(h, chain...)
}

// skip acknowledges a message skipped on purpose (ErrSkipped) or as a
// duplicate (ErrDuplicate).
func skip(hs Hooks) Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			err := next(ctx, m)
			switch {
			case err == nil:
				return nil
			case errors.Is(err, ErrDuplicate):
				hs.duplicate(ctx, m)
				return nil
			case errors.Is(err, ErrSkipped):
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
