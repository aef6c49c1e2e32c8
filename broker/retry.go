package broker

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"
)

// Retry retries a failing handler in place with exponential backoff and
// jitter, up to p.MaxAttempts calls in all. Because it retries in place, the
// messages behind this one (same key, same partition) wait: order is kept.
// It stops early for an error marked Permanent or matching ErrSkipped, and when ctx ends (returning
// the last handler error joined with ctx's error). It sets
// m.Delivery.Attempt before each call. hooks are told of each retry.
func Retry(p RetryPolicy, hooks ...Hook) Middleware {
	p = p.WithDefaults()
	hs := Hooks(hooks)
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			backoff := p.InitialBackoff
			for attempt := 1; ; attempt++ {
				m.Delivery.Attempt = attempt
				err := next(ctx, m)
				if err == nil || IsPermanent(err) || errors.Is(err, ErrSkipped) || errors.Is(err, ErrDuplicate) || attempt >= p.MaxAttempts {
					return err
				}
				if ctx.Err() != nil {
					return fmt.Errorf("%w (retry abandoned: %w)", err, ctx.Err())
				}
				hs.retry(ctx, m, attempt, err)
				t := time.NewTimer(p.jittered(backoff))
				select {
				case <-ctx.Done():
					t.Stop()
					return fmt.Errorf("%w (retry abandoned: %w)", err, ctx.Err())
				case <-t.C:
				}
				backoff = time.Duration(float64(backoff) * p.Multiplier)
				if backoff > p.MaxBackoff {
					backoff = p.MaxBackoff
				}
			}
		}
	}
}

// Backoff returns the wait before attempt n+1 (n ≥ 1) without jitter.
func (p RetryPolicy) Backoff(n int) time.Duration {
	p = p.WithDefaults()
	d := float64(p.InitialBackoff)
	for i := 1; i < n; i++ {
		d *= p.Multiplier
		if d >= float64(p.MaxBackoff) {
			return p.MaxBackoff
		}
	}
	return time.Duration(d)
}

func (p RetryPolicy) jittered(d time.Duration) time.Duration {
	if p.Jitter <= 0 || d <= 0 {
		return d
	}
	f := 1 + p.Jitter*(2*rand.Float64()-1)
	return time.Duration(float64(d) * f)
}
