package events

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
)

// Router holds the typed handlers of a subscription: one per event type,
// registered with On, and optionally one for every other known type
// (OnEvent). Bus.Subscribe runs it. Register handlers before subscribing;
// a Router is safe for concurrent use once subscribed.
//
// For each message the Router reads the event type from the ce_type header
// and, before any decoding:
//
//   - a type the registry does not know fails for good
//     (eventmodels.ErrUnknownEventType, marked broker.Permanent): the
//     message is dead-lettered, never dropped silently;
//   - a known type without a handler is skipped (broker.ErrSkipped): the
//     pipeline acknowledges it and counts it (broker.HookSkipped).
//
// Otherwise it decodes the body once — retries of the message reuse the
// event — and calls the handler. A body that does not decode is dead-
// lettered too. A handler's ctx carries the message (MessageFromContext).
type Router struct {
	byType []route // in registration order
	any    func(context.Context, eventmodels.Event) error
}

type route struct {
	t  reflect.Type
	fn func(context.Context, eventmodels.Event) error
}

// NewRouter returns an empty Router.
func NewRouter() *Router { return &Router{} }

// On registers fn for the events of type T, a registered event type
// (*eventmodels.JobCompleted, or a type of your own). A second handler for
// one type replaces the first.
func On[T eventmodels.Event](r *Router, fn func(ctx context.Context, e T) error) {
	t := reflect.TypeFor[T]()
	rt := route{t: t, fn: func(ctx context.Context, e eventmodels.Event) error { return fn(ctx, e.(T)) }}
	if i := slices.IndexFunc(r.byType, func(x route) bool { return x.t == t }); i >= 0 {
		r.byType[i] = rt
		return
	}
	r.byType = append(r.byType, rt)
}

// OnEvent registers fn for every known event type that has no handler of
// its own, as an eventmodels.Event.
func OnEvent(r *Router, fn func(ctx context.Context, e eventmodels.Event) error) { r.any = fn }

// Dispatch calls the handler r has for e's Go type (or the OnEvent
// handler) with e, as if e had been consumed, and returns its error; with
// no handler for e it returns an error matching broker.ErrSkipped. It
// decodes nothing and needs no Bus: it is how a service's handlers are
// driven from a unit test, or from events read elsewhere. ctx carries no
// message (MessageFromContext reports false) unless the caller added one.
func (r *Router) Dispatch(ctx context.Context, e eventmodels.Event) error {
	if e == nil {
		return errors.New("events: Dispatch of a nil event")
	}
	t := reflect.TypeOf(e)
	for _, rt := range r.byType {
		if rt.t == t {
			return rt.fn(ctx, e)
		}
	}
	if r.any != nil {
		return r.any(ctx, e)
	}
	return fmt.Errorf("%w: no handler for %v", broker.ErrSkipped, t)
}

// compiled is a Router bound to a registry.
type compiled struct {
	b        *Bus
	handlers map[string]func(context.Context, eventmodels.Event) error
	any      func(context.Context, eventmodels.Event) error
	topics   []string // of the handled types, sorted
}

// compile resolves r's types against b's registry.
func (b *Bus) compile(r *Router) (*compiled, error) {
	if r == nil {
		return nil, errors.New("events: nil Router")
	}
	if len(r.byType) == 0 && r.any == nil {
		return nil, errors.New("events: the Router has no handler")
	}
	c := &compiled{b: b, handlers: map[string]func(context.Context, eventmodels.Event) error{}, any: r.any}
	var errs []error
	topics := map[string]bool{}
	for _, rt := range r.byType {
		info, ok := b.reg.LookupGoType(rt.t)
		if !ok {
			errs = append(errs, fmt.Errorf("a handler takes %v, which the registry does not know (eventmodels.Register it)", rt.t))
			continue
		}
		c.handlers[info.EventType] = rt.fn
		topics[info.Topic] = true
	}
	if r.any != nil {
		for _, info := range b.reg.Types() {
			topics[info.Topic] = true
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	for t := range topics {
		c.topics = append(c.topics, t)
	}
	slices.Sort(c.topics)
	return c, nil
}

// handle is the compiled Router as a broker.Handler.
func (c *compiled) handle(ctx context.Context, m *broker.Message) error {
	e, fn, err := c.resolve(m)
	if err != nil || fn == nil {
		return err
	}
	return fn(ContextWithMessage(ctx, m), e)
}

// resolve finds the handler of m and decodes m once (the outcome is kept
// in m.Delivery.Decoded for the retries).
func (c *compiled) resolve(m *broker.Message) (eventmodels.Event, func(context.Context, eventmodels.Event) error, error) {
	if d, ok := m.Delivery.Decoded.(*decoded); ok {
		return d.e, d.fn, d.err
	}
	e, fn, err := c.resolveOnce(m)
	m.Delivery.Decoded = &decoded{e: e, fn: fn, err: err}
	return e, fn, err
}

func (c *compiled) resolveOnce(m *broker.Message) (eventmodels.Event, func(context.Context, eventmodels.Event) error, error) {
	if err := CheckCloudEvent(m); err != nil {
		return nil, nil, broker.Permanent(err)
	}
	typ := m.Header(broker.HeaderType)
	info, ok := c.b.reg.Lookup(typ)
	if !ok {
		return nil, nil, broker.Permanent(fmt.Errorf("%w: %q", eventmodels.ErrUnknownEventType, typ))
	}
	fn, err := c.handlerOf(typ)
	if err != nil {
		return nil, nil, err
	}
	e, err := c.b.decode(m, info)
	if err != nil {
		return nil, nil, err
	}
	return e, fn, nil
}

// handlerOf returns the handler of a known event type, or ErrSkipped.
func (c *compiled) handlerOf(typ string) (func(context.Context, eventmodels.Event) error, error) {
	if fn := c.handlers[typ]; fn != nil {
		return fn, nil
	}
	if c.any != nil {
		return c.any, nil
	}
	return nil, fmt.Errorf("%w: no handler for event type %q", broker.ErrSkipped, typ)
}

// decoded is what Delivery.Decoded holds after the first attempt.
type decoded struct {
	e   eventmodels.Event
	fn  func(context.Context, eventmodels.Event) error
	err error
}

type messageKey struct{}

// MessageFromContext returns the message a typed handler is handling.
func MessageFromContext(ctx context.Context) (*broker.Message, bool) {
	m, ok := ctx.Value(messageKey{}).(*broker.Message)
	return m, ok
}

// ContextWithMessage returns ctx carrying m for MessageFromContext.
func ContextWithMessage(ctx context.Context, m *broker.Message) context.Context {
	return context.WithValue(ctx, messageKey{}, m)
}
