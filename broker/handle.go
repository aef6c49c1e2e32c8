package broker

import (
	"context"
	"fmt"
	"reflect"

	"github.com/cosmic-horizons/events/eventmodels"
)

type messageKey struct{}

// MessageFromContext returns the message a typed handler is handling.
func MessageFromContext(ctx context.Context) (*Message, bool) {
	m, ok := ctx.Value(messageKey{}).(*Message)
	return m, ok
}

// ContextWithMessage returns ctx carrying m for MessageFromContext.
func ContextWithMessage(ctx context.Context, m *Message) context.Context {
	return context.WithValue(ctx, messageKey{}, m)
}

// HandleEvent turns a typed function into a Handler. T is a concrete event
// type (*eventmodels.JobCompleted) or eventmodels.Event for every type.
//
// A message of an event type the decoder's registry does not know fails
// with a Permanent error matching eventmodels.ErrUnknownEventType, whatever
// T is: it goes straight to the dead letter, never retried, never dropped
// silently. So does a message that cannot be decoded (malformed or invalid
// body, contradictory headers). A message of a known event type that is
// not T returns ErrSkipped (recognised from the ce_type header before any
// decoding): the pipeline acknowledges it without calling fn and tells
// HookSkipped. fn's ctx carries the message (MessageFromContext).
func HandleEvent[T eventmodels.Event](d *Decoder, fn func(ctx context.Context, e T) error) Handler {
	want := ""
	if info, ok := d.reg.LookupGoType(reflect.TypeFor[T]()); ok {
		want = info.EventType
	}
	return func(ctx context.Context, m *Message) error {
		if typ := m.Header(HeaderType); typ != "" {
			if _, known := d.reg.Lookup(typ); !known {
				return Permanent(fmt.Errorf("%w: %q", eventmodels.ErrUnknownEventType, typ))
			}
			if want != "" && typ != want {
				return fmt.Errorf("%w: event type %q is not handled here", ErrSkipped, typ)
			}
		}
		e, err := decodeOnce(d, m)
		if err != nil {
			return err
		}
		t, ok := e.(T)
		if !ok {
			return fmt.Errorf("%w: event type %q is not handled here", ErrSkipped, e.Envelope().EventType)
		}
		return fn(ContextWithMessage(ctx, m), t)
	}
}

// decoded is what Delivery.Decoded holds after HandleEvent's first attempt.
type decoded struct {
	e   eventmodels.Event
	err error
}

// decodeOnce decodes m on its first attempt and returns the same outcome
// on the next ones.
func decodeOnce(d *Decoder, m *Message) (eventmodels.Event, error) {
	if c, ok := m.Delivery.Decoded.(*decoded); ok {
		return c.e, c.err
	}
	e, err := d.Decode(m)
	m.Delivery.Decoded = &decoded{e, err}
	return e, err
}
