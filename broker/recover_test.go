package broker_test

import (
	"bytes"
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/cosmic-horizons/events/broker"
)

func panicking(v any) broker.Handler {
	return func(context.Context, *broker.Message) error { panic(v) }
}

func TestRecoverTurnsPanicIntoError(t *testing.T) {
	sentinel := errors.New("sentinel")
	tests := []struct {
		name      string
		value     any
		isErr     error // errors.Is target, if any
		permanent bool
	}{
		{"string", "kaboom", nil, false},
		{"error", sentinel, sentinel, false},
		{"wrapped permanent error", broker.Permanent(sentinel), sentinel, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := broker.Recover()(panicking(tt.value))(context.Background(), newMessage())
			var pe *broker.PanicError
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T), want *PanicError", err, err)
			}
			if pe.Value != tt.value {
				t.Fatalf("Value = %v, want %v", pe.Value, tt.value)
			}
			if !bytes.Contains(pe.Stack, []byte("panicking")) {
				t.Fatalf("stack does not show the panicking function:\n%s", pe.Stack)
			}
			if tt.isErr != nil && !errors.Is(err, tt.isErr) {
				t.Fatalf("errors.Is(err, %v) = false", tt.isErr)
			}
			if tt.isErr == nil && errors.Unwrap(err) != nil {
				t.Fatalf("Unwrap = %v, want nil for a non-error value", errors.Unwrap(err))
			}
			if broker.IsPermanent(err) != tt.permanent {
				t.Fatalf("IsPermanent = %v, want %v", broker.IsPermanent(err), tt.permanent)
			}
			if want := "broker: handler panic: "; len(err.Error()) <= len(want) || err.Error()[:len(want)] != want {
				t.Fatalf("Error() = %q", err.Error())
			}
		})
	}
}

func TestRecoverPanicNil(t *testing.T) {
	err := broker.Recover()(panicking(nil))(context.Background(), newMessage())
	var pn *runtime.PanicNilError
	if !errors.As(err, &pn) {
		t.Fatalf("err = %v, want a *PanicError wrapping *runtime.PanicNilError", err)
	}
}

func TestRecoverPassesResultsThrough(t *testing.T) {
	for _, want := range []error{nil, errBoom} {
		if err := broker.Recover()(failing(want))(context.Background(), newMessage()); err != want {
			t.Fatalf("err = %v, want %v", err, want)
		}
	}
}
