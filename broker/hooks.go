package broker

import (
	"context"
	"time"
)

// Hook observes what the consumption pipeline does. A hook implements any
// of the small interfaces below; the pipeline finds them by type assertion,
// so new hook kinds can be added without breaking existing hooks (the
// franz-go kgo hooks pattern). Metrics and logging are hooks.
type Hook any

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
