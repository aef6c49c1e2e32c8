package broker

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Hook is how code extends what publishers and the consumption pipeline
// do, in one place: a backend's Config.Hooks, a Subscription's Hooks, a
// Bus's hooks. A hook implements any of the small interfaces of this
// package (and of a backend's: kafkabus.HookClientError,
// rabbitbus.HookConnection); the pipeline finds them by type assertion, so
// new kinds can be added without breaking existing hooks (the franz-go kgo
// hooks pattern). A value that implements none of them is refused
// (ValidateHooks): it would silently do nothing.
//
// There are two families:
//
//   - observers are told what happened: HookHandled, HookRetry,
//     HookDeadLetter, HookDeadLetterFailed, HookDiscard, HookSkipped,
//     HookDuplicate, HookPublished, HookPublishRetry. Metrics and logs
//     are observers.
//   - wrappers change what happens: HookWrapMessage wraps the handling of
//     each message once, outermost (tracing spans); HookWrapAttempt wraps
//     each attempt, innermost, around the handler itself (de-duplication).
//     A Middleware is a HookWrapMessage, an AttemptMiddleware a
//     HookWrapAttempt.
//
// One value may be both: a tracer wraps each message in a span and records
// retries and dead letters on it, registered once.
type Hook any

// HookWrapMessage wraps the handling of each message, once, outermost: it
// sees the message before the event-type filter and the outcome after the
// retries and the failure policy (a dead-lettered message is a nil). The
// hooks' wrappers apply in list order, the first outermost.
type HookWrapMessage interface {
	WrapMessage(next Handler) Handler
}

// HookWrapAttempt wraps each handler attempt, innermost: inside the
// retries, the timeout and the dead-letter step, right around the handler.
// What it returns is the attempt's outcome (retried, dead-lettered). The
// hooks' wrappers apply in list order, the first outermost.
type HookWrapAttempt interface {
	WrapAttempt(next Handler) Handler
}

// WrapMessage implements HookWrapMessage: a Middleware wraps each message
// once, outermost.
func (mw Middleware) WrapMessage(next Handler) Handler { return mw(next) }

// AttemptMiddleware is a middleware that wraps each attempt (see
// HookWrapAttempt), as Dedupe does.
type AttemptMiddleware func(Handler) Handler

// WrapAttempt implements HookWrapAttempt.
func (mw AttemptMiddleware) WrapAttempt(next Handler) Handler { return mw(next) }

// IsHook reports whether h implements at least one hook interface of this
// package.
func IsHook(h Hook) bool {
	switch h.(type) {
	case HookHandled, HookRetry, HookDeadLetter, HookDeadLetterFailed, HookDiscard, HookSkipped,
		HookDuplicate, HookPublished, HookPublishRetry, HookWrapMessage, HookWrapAttempt:
		return true
	}
	return false
}

// ValidateHooks reports, in one error, every hook that is nil or
// implements no hook interface: neither one of this package's (IsHook) nor
// one that extra accepts (a backend's own hook interfaces).
func ValidateHooks(hooks []Hook, extra ...func(Hook) bool) error {
	var errs []error
	for i, h := range hooks {
		if h == nil {
			errs = append(errs, fmt.Errorf("Hooks[%d] is nil", i))
			continue
		}
		ok := IsHook(h)
		for _, x := range extra {
			ok = ok || x(h)
		}
		if !ok {
			errs = append(errs, fmt.Errorf("Hooks[%d] (%T) implements no hook interface: it would do nothing", i, h))
		}
	}
	return errors.Join(errs...)
}

// HookHandled is called after every handler attempt.
type HookHandled interface {
	OnHandled(ctx context.Context, m *Message, took time.Duration, err error)
}

// HookRetry is called before a failed attempt is retried.
type HookRetry interface {
	OnRetry(ctx context.Context, m *Message, attempt int, err error)
}

// HookDeadLetter is called when a message was published to its dead-letter
// topic (err is the handler's error).
type HookDeadLetter interface {
	OnDeadLetter(ctx context.Context, m *Message, err error)
}

// HookDiscard is called when a failed message is acknowledged without being
// dead-lettered (OnFailureDiscard).
type HookDiscard interface {
	OnDiscard(ctx context.Context, m *Message, err error)
}

// HookDeadLetterFailed is called when a message's dead letter was refused
// for good (handlerErr sent it there, publishErr refused it); the
// subscription's DeadLetterFallback applies next.
type HookDeadLetterFailed interface {
	OnDeadLetterFailed(ctx context.Context, m *Message, handlerErr, publishErr error)
}

// HookSkipped is called when a handler skipped a message on purpose
// (returned ErrSkipped): a known event type the handler does not take.
type HookSkipped interface {
	OnSkipped(ctx context.Context, m *Message, reason error)
}

// HookPublished is called after a Publish call returns (err is its error).
type HookPublished interface {
	OnPublished(ctx context.Context, msgs []*Message, took time.Duration, err error)
}

// HookPublishRetry is called when a backend sends messages of a Publish
// call again, inside the call: after a nack, or after the channel or
// connection they were sent on was lost before their confirms. Publish
// failures, retries included, end in HookPublished's error.
type HookPublishRetry interface {
	OnPublishRetry(ctx context.Context, msgs []*Message, err error)
}

// Hooks is a list of hooks with helpers that call every hook of one kind.
type Hooks []Hook

func (hs Hooks) handled(ctx context.Context, m *Message, took time.Duration, err error) {
	for _, h := range hs {
		if x, ok := h.(HookHandled); ok {
			x.OnHandled(ctx, m, took, err)
		}
	}
}

func (hs Hooks) retry(ctx context.Context, m *Message, attempt int, err error) {
	for _, h := range hs {
		if x, ok := h.(HookRetry); ok {
			x.OnRetry(ctx, m, attempt, err)
		}
	}
}

func (hs Hooks) deadLetter(ctx context.Context, m *Message, err error) {
	for _, h := range hs {
		if x, ok := h.(HookDeadLetter); ok {
			x.OnDeadLetter(ctx, m, err)
		}
	}
}

func (hs Hooks) discard(ctx context.Context, m *Message, err error) {
	for _, h := range hs {
		if x, ok := h.(HookDiscard); ok {
			x.OnDiscard(ctx, m, err)
		}
	}
}

func (hs Hooks) deadLetterFailed(ctx context.Context, m *Message, handlerErr, publishErr error) {
	for _, h := range hs {
		if x, ok := h.(HookDeadLetterFailed); ok {
			x.OnDeadLetterFailed(ctx, m, handlerErr, publishErr)
		}
	}
}

func (hs Hooks) duplicate(ctx context.Context, m *Message) {
	for _, h := range hs {
		if x, ok := h.(HookDuplicate); ok {
			x.OnDuplicate(ctx, m)
		}
	}
}

func (hs Hooks) skipped(ctx context.Context, m *Message, reason error) {
	for _, h := range hs {
		if x, ok := h.(HookSkipped); ok {
			x.OnSkipped(ctx, m, reason)
		}
	}
}

// Published calls every HookPublished; backends call it from Publish.
func (hs Hooks) Published(ctx context.Context, msgs []*Message, took time.Duration, err error) {
	for _, h := range hs {
		if x, ok := h.(HookPublished); ok {
			x.OnPublished(ctx, msgs, took, err)
		}
	}
}

// PublishRetried calls every HookPublishRetry; backends call it when they
// send messages of a Publish call again.
func (hs Hooks) PublishRetried(ctx context.Context, msgs []*Message, err error) {
	for _, h := range hs {
		if x, ok := h.(HookPublishRetry); ok {
			x.OnPublishRetry(ctx, msgs, err)
		}
	}
}
