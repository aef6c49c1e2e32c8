package broker_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/cosmic-horizons/events/broker"
)

func TestPermanent(t *testing.T) {
	if broker.Permanent(nil) != nil {
		t.Fatal("Permanent(nil) != nil")
	}
	p := broker.Permanent(errBoom)
	if p.Error() != "boom" {
		t.Fatalf("Error() = %q, want the cause's text", p.Error())
	}
	tests := []struct {
		name string
		err  error
		perm bool
	}{
		{"plain", errBoom, false},
		{"marked", p, true},
		{"wrapped once", fmt.Errorf("handle: %w", p), true},
		{"wrapped twice", fmt.Errorf("outer: %w", fmt.Errorf("inner: %w", p)), true},
		{"joined", errors.Join(errBoom, p), true},
		{"sentinel itself", broker.ErrPermanent, true},
		{"text only", errors.New(p.Error()), false},
	}
	for _, tt := range tests {
		if got := broker.IsPermanent(tt.err); got != tt.perm {
			t.Errorf("%s: IsPermanent = %v, want %v", tt.name, got, tt.perm)
		}
		if tt.perm && tt.err != broker.ErrPermanent && !errors.Is(tt.err, errBoom) {
			t.Errorf("%s: the cause is not reachable with errors.Is", tt.name)
		}
	}
}

func TestPublishError(t *testing.T) {
	mk := func(i int, id string) broker.FailedMessage {
		m := &broker.Message{Topic: "t", Key: fmt.Sprintf("k%d", i)}
		if id != "" {
			m.SetHeader(broker.HeaderID, id)
		}
		return broker.FailedMessage{Index: i, Message: m, Err: broker.ErrMessageTooLarge}
	}
	one := &broker.PublishError{Failed: []broker.FailedMessage{mk(2, "id-2")}}
	if want := `broker: 1 message(s) not confirmed; #2 (topic "t", key "k2", id id-2): broker: message too large`; one.Error() != want {
		t.Fatalf("Error()\n got %s\nwant %s", one.Error(), want)
	}
	if !errors.Is(one, broker.ErrMessageTooLarge) {
		t.Fatal("errors.Is through PublishError failed")
	}

	five := &broker.PublishError{Failed: []broker.FailedMessage{mk(0, ""), mk(1, ""), mk(2, ""), mk(3, ""), mk(4, "")}}
	five.Failed[4].Err = broker.ErrUnroutable
	msg := five.Error()
	if !strings.HasPrefix(msg, "broker: 5 message(s) not confirmed; #0") || !strings.HasSuffix(msg, "; and 2 more") || strings.Contains(msg, "#3") {
		t.Fatalf("Error() = %s, want the first three and a count", msg)
	}
	if strings.Contains(msg, ", id ") {
		t.Fatalf("Error() = %s names an id the messages lack", msg)
	}
	if !errors.Is(five, broker.ErrUnroutable) || !errors.Is(five, broker.ErrMessageTooLarge) {
		t.Fatal("Unwrap does not return every cause")
	}
	if got := len(five.Unwrap()); got != 5 {
		t.Fatalf("Unwrap returned %d errors, want 5", got)
	}
	var pe *broker.PublishError
	if !errors.As(fmt.Errorf("publish: %w", five), &pe) || pe != five {
		t.Fatal("errors.As does not find a wrapped PublishError")
	}
}

// TestPublishErrorWithoutMessage: a backend that fills only Index and Err
// must not make Error panic.
func TestPublishErrorWithoutMessage(t *testing.T) {
	e := &broker.PublishError{Failed: []broker.FailedMessage{{Index: 1, Err: errBoom}}}
	if got := e.Error(); !strings.Contains(got, "#1") || !strings.Contains(got, "boom") {
		t.Fatalf("Error() = %q", got)
	}
}

func TestHandlerError(t *testing.T) {
	e := &broker.HandlerError{Topic: "t", Partition: 2, Offset: 9, Key: "k", Attempts: 3, Err: errBoom}
	if want := `broker: handler failed on t[2]@9 (key "k") after 3 attempt(s): boom`; e.Error() != want {
		t.Fatalf("Error()\n got %s\nwant %s", e.Error(), want)
	}
	wrapped := fmt.Errorf("consumer: %w", e)
	var he *broker.HandlerError
	if !errors.As(wrapped, &he) || he.Attempts != 3 || !errors.Is(wrapped, errBoom) {
		t.Fatal("HandlerError is not reachable, or does not unwrap to its cause")
	}
}

func TestSentinelsAreDistinct(t *testing.T) {
	all := []error{broker.ErrClosed, broker.ErrMessageTooLarge, broker.ErrUnroutable, broker.ErrInvalidMessage, broker.ErrInvalidSubscription, broker.ErrPermanent}
	for i, a := range all {
		for j, b := range all {
			if i != j && errors.Is(a, b) {
				t.Errorf("%v matches %v", a, b)
			}
		}
		if !strings.HasPrefix(a.Error(), "broker: ") {
			t.Errorf("%q lacks the package prefix", a)
		}
	}
}
