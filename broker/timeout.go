package broker

import (
	"context"
	"time"
)

// Timeout bounds each handler call to d: the handler's ctx is cancelled when
// d expires. A handler that ignores its ctx cannot be stopped; it only learns
// through ctx. d <= 0 means no bound.
func Timeout(d time.Duration) Middleware {
	return func(next Handler) Handler {
		if d <= 0 {
			return next
		}
		return func(ctx context.Context, m *Message) error {
			ctx, cancel := context.WithTimeout(ctx, d)
			defer cancel()
			return next(ctx, m)
		}
	}
}
