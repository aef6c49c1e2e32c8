package broker

import (
	"context"
	"fmt"
	"runtime/debug"
)

// PanicError is the error a recovered handler panic becomes.
type PanicError struct {
	Value any    // what was passed to panic
	Stack []byte // the goroutine's stack at the panic
}

// Error reports the panic value; the stack is in Stack, not in the text.
func (e *PanicError) Error() string { return fmt.Sprintf("broker: handler panic: %v", e.Value) }

// Unwrap returns the panic value when it is an error.
func (e *PanicError) Unwrap() error {
	if err, ok := e.Value.(error); ok {
		return err
	}
	return nil
}

// Recover turns a panic in the handler into a *PanicError, so one bad
// message cannot crash the consumer. The error is retried and dead-lettered
// like any other.
func Recover() Middleware {
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) (err error) {
			defer func() {
				if v := recover(); v != nil {
					err = &PanicError{Value: v, Stack: debug.Stack()}
				}
			}()
			return next(ctx, m)
		}
	}
}
