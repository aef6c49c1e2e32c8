package broker

import (
	"context"
	"log/slog"
	"time"
)

// LoggingHook writes what publishers and the consumption pipeline do as
// structured log records. It implements HookHandled, HookRetry,
// HookDeadLetter, HookDeadLetterFailed, HookDiscard, HookSkipped,
// HookPublished and HookDuplicate. Levels: successful attempts, publishes,
// skips and duplicates at Debug; retries at Info; failed attempts at Warn;
// dead letters, refused dead letters, discards and failed publishes at
// Error. Records carry topic, group, key, id (ce_id), type (ce_type) and
// attempt. It is safe for concurrent use.
type LoggingHook struct {
	logger *slog.Logger
}

// LogHook returns a hook logging to logger (nil: discard).
func LogHook(logger *slog.Logger) *LoggingHook {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &LoggingHook{logger: logger}
}

func messageAttrs(m *Message) slog.Attr {
	return slog.Group("message",
		slog.String("topic", m.Topic),
		slog.String("group", m.Delivery.Group),
		slog.String("key", m.Key),
		slog.String("id", m.Header(HeaderID)),
		slog.String("type", m.Header(HeaderType)),
		slog.Int("attempt", m.Delivery.Attempt))
}

// OnHandled implements HookHandled.
func (h *LoggingHook) OnHandled(ctx context.Context, m *Message, took time.Duration, err error) {
	if err != nil {
		h.logger.LogAttrs(ctx, slog.LevelWarn, "handler attempt failed", messageAttrs(m), slog.Duration("took", took), slog.Any("error", err))
		return
	}
	if h.logger.Enabled(ctx, slog.LevelDebug) {
		h.logger.LogAttrs(ctx, slog.LevelDebug, "message handled", messageAttrs(m), slog.Duration("took", took))
	}
}

// OnRetry implements HookRetry.
func (h *LoggingHook) OnRetry(ctx context.Context, m *Message, attempt int, err error) {
	h.logger.LogAttrs(ctx, slog.LevelInfo, "retrying message", messageAttrs(m), slog.Int("failed_attempt", attempt), slog.Any("error", err))
}

// OnDeadLetter implements HookDeadLetter.
func (h *LoggingHook) OnDeadLetter(ctx context.Context, m *Message, err error) {
	h.logger.LogAttrs(ctx, slog.LevelError, "message dead-lettered", messageAttrs(m), slog.Any("error", err))
}

// OnDiscard implements HookDiscard.
func (h *LoggingHook) OnDiscard(ctx context.Context, m *Message, err error) {
	h.logger.LogAttrs(ctx, slog.LevelError, "message discarded", messageAttrs(m), slog.Any("error", err))
}

// OnDeadLetterFailed implements HookDeadLetterFailed.
func (h *LoggingHook) OnDeadLetterFailed(ctx context.Context, m *Message, handlerErr, publishErr error) {
	h.logger.LogAttrs(ctx, slog.LevelError, "dead letter refused", messageAttrs(m), slog.Any("error", handlerErr), slog.Any("publish_error", publishErr))
}

// OnSkipped implements HookSkipped.
func (h *LoggingHook) OnSkipped(ctx context.Context, m *Message, reason error) {
	if h.logger.Enabled(ctx, slog.LevelDebug) {
		h.logger.LogAttrs(ctx, slog.LevelDebug, "message skipped", messageAttrs(m), slog.Any("reason", reason))
	}
}

// OnDuplicate implements HookDuplicate.
func (h *LoggingHook) OnDuplicate(ctx context.Context, m *Message) {
	if h.logger.Enabled(ctx, slog.LevelDebug) {
		h.logger.LogAttrs(ctx, slog.LevelDebug, "duplicate message skipped", messageAttrs(m))
	}
}

// OnPublished implements HookPublished.
func (h *LoggingHook) OnPublished(ctx context.Context, msgs []*Message, took time.Duration, err error) {
	if err != nil {
		h.logger.LogAttrs(ctx, slog.LevelError, "publish failed", slog.Int("messages", len(msgs)), slog.Duration("took", took), slog.Any("error", err))
		return
	}
	if h.logger.Enabled(ctx, slog.LevelDebug) {
		h.logger.LogAttrs(ctx, slog.LevelDebug, "published", slog.Int("messages", len(msgs)), slog.Duration("took", took))
	}
}

var (
	_ HookHandled          = (*LoggingHook)(nil)
	_ HookRetry            = (*LoggingHook)(nil)
	_ HookDeadLetter       = (*LoggingHook)(nil)
	_ HookDiscard          = (*LoggingHook)(nil)
	_ HookSkipped          = (*LoggingHook)(nil)
	_ HookDeadLetterFailed = (*LoggingHook)(nil)
	_ HookPublished        = (*LoggingHook)(nil)
	_ HookDuplicate        = (*LoggingHook)(nil)
)
