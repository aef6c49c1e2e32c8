// Package ctxcall bounds blocking client calls that take no context (sarama
// admin and client I/O) by a context.
package ctxcall

import "context"

// Do runs fn and returns its result when it returns, or ctx's error when ctx
// ends first; fn then finishes in the background (bounded by the client's
// own timeouts) and its result is dropped.
func Do[T any](ctx context.Context, fn func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	ch := make(chan result, 1)
	go func() {
		v, err := fn()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}
