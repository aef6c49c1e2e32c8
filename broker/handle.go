package broker

import (
	"context"
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
// Messages of other event types on the same topic are acknowledged without
// calling fn (they are recognised from the ce_type header before any
// decoding). A message that cannot be decoded — unknown type, malformed or
// invalid body, contradictory headers — fails with a Permanent error: it goes
// straight to the dead letter, never retried, never dropped silently. fn's
// ctx carries the message (MessageFromContext).
func HandleEvent[T eventmodels.Event](d *Decoder, fn func(ctx context.Context, e T) error) Handler {
	want := ""
	if info, ok := d.reg.LookupGoType(reflect.TypeFor[T]()); ok {
		want = info.EventType
	}
	return func(ctx context.Context, m *Message) error {
		if want != "" {
			if typ := m.Header(HeaderType); typ != "" && typ != want {
				return nil
			}
		}
		e, err := d.Decode(m)
		if err != nil {
			return err
		}
		t, ok := e.(T)
		if !ok {
			return nil
		}
		return fn(ContextWithMessage(ctx, m), t)
	}
}
