package broker_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

func TestTimeoutCancelsHandlerContext(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	var deadline time.Time
	h := func(ctx context.Context, _ *broker.Message) error {
		deadline, _ = ctx.Deadline()
		<-ctx.Done() // returns only because Timeout cancels ctx
		return ctx.Err()
	}
	start := time.Now()
	err := broker.Timeout(time.Millisecond)(h)(parent, newMessage())
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want DeadlineExceeded", err)
	}
	if deadline.IsZero() || deadline.Before(start.Add(time.Millisecond)) || deadline.After(start.Add(time.Millisecond+time.Since(start))) {
		t.Fatalf("handler deadline %v, want start+1ms (start %v)", deadline, start)
	}
	if parent.Err() != nil {
		t.Fatal("Timeout cancelled the parent context")
	}
}

func TestTimeoutKeepsShorterParentDeadline(t *testing.T) {
	parent, cancel := context.WithTimeout(context.Background(), time.Millisecond)
	defer cancel()
	want, _ := parent.Deadline()
	var got time.Time
	h := func(ctx context.Context, _ *broker.Message) error { got, _ = ctx.Deadline(); return nil }
	if err := broker.Timeout(time.Hour)(h)(parent, newMessage()); err != nil {
		t.Fatal(err)
	}
	if !got.Equal(want) {
		t.Fatalf("deadline %v, want the parent's %v", got, want)
	}
}

func TestTimeoutDisabled(t *testing.T) {
	for _, d := range []time.Duration{0, -time.Second} {
		h := func(ctx context.Context, _ *broker.Message) error {
			if _, ok := ctx.Deadline(); ok {
				return errors.New("handler ctx has a deadline")
			}
			return errBoom
		}
		if err := broker.Timeout(d)(h)(context.Background(), newMessage()); !errors.Is(err, errBoom) {
			t.Fatalf("Timeout(%v): err = %v, want the handler's own", d, err)
		}
	}
}
