package events_test

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/internal/samples"
	"github.com/stretchr/testify/require"
)

// messages returns the Bus message of every sample (Avro) and the samples.
func messages(t *testing.T, bus *events.Bus) ([]*broker.Message, []eventmodels.Event) {
	t.Helper()
	evs := samples.All()
	out := make([]*broker.Message, len(evs))
	for i, e := range evs {
		m, err := bus.Message(e)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = m
	}
	return out, evs
}

func handler(t *testing.T, bus *events.Bus, r *events.Router) broker.Handler {
	t.Helper()
	h, err := bus.Handler(r)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// TestRouterCallsTheHandlerOfEachType: each message reaches the handler of
// its type, decoded, with the message in its ctx; the others are skipped.
func TestRouterCallsTheHandlerOfEachType(t *testing.T) {
	bus, _ := newBus(t)
	r := events.NewRouter()
	var completed []*eventmodels.JobCompleted
	var queued []*eventmodels.JobQueued
	var fromCtx []*broker.Message
	events.On(r, func(ctx context.Context, e *eventmodels.JobCompleted) error {
		completed = append(completed, e)
		m, _ := events.MessageFromContext(ctx)
		fromCtx = append(fromCtx, m)
		return nil
	})
	events.On(r, func(_ context.Context, e *eventmodels.JobQueued) error { queued = append(queued, e); return nil })
	h := handler(t, bus, r)
	msgs, evs := messages(t, bus)
	for i, m := range msgs {
		err := h(context.Background(), m)
		switch evs[i].(type) {
		case *eventmodels.JobCompleted, *eventmodels.JobQueued:
			if err != nil {
				t.Fatalf("%s: %v", m.Header(broker.HeaderType), err)
			}
		default:
			if !errors.Is(err, broker.ErrSkipped) || broker.IsPermanent(err) {
				t.Fatalf("%s: err %v, want ErrSkipped", m.Header(broker.HeaderType), err)
			}
		}
	}
	if len(completed) != 1 || !reflect.DeepEqual(completed[0], evs[3]) || len(queued) != 1 || !reflect.DeepEqual(queued[0], evs[1]) {
		t.Fatalf("completed %v queued %v", completed, queued)
	}
	if fromCtx[0] != msgs[3] {
		t.Fatal("MessageFromContext is not the message being handled")
	}
}

// TestRouterUnknownTypeIsPermanent: a type the registry does not know
// fails for good (dead letter), before any decoding, handler or not.
func TestRouterUnknownTypeIsPermanent(t *testing.T) {
	bus, _ := newBus(t)
	for _, r := range []*events.Router{routerFor(func(context.Context, *eventmodels.JobCompleted) error { return nil }), anyRouter()} {
		m := &broker.Message{Topic: "job-lifecycle", Body: []byte("{}"), Headers: ceHeaders("job.exploded", eventmodels.ContentTypeJSON)}
		err := handler(t, bus, r)(context.Background(), m)
		if !broker.IsPermanent(err) || !errors.Is(err, eventmodels.ErrUnknownEventType) {
			t.Fatalf("err %v; want a permanent ErrUnknownEventType", err)
		}
	}
}

func routerFor[T eventmodels.Event](fn func(context.Context, T) error) *events.Router {
	r := events.NewRouter()
	events.On(r, fn)
	return r
}

func anyRouter() *events.Router {
	r := events.NewRouter()
	events.OnEvent(r, func(context.Context, eventmodels.Event) error { return nil })
	return r
}

// TestRouterSkipsWithoutDecoding: a known type without a handler is
// recognised from its header; a body that would not decode is never read.
func TestRouterSkipsWithoutDecoding(t *testing.T) {
	bus, _ := newBus(t)
	called := false
	h := handler(t, bus, routerFor(func(context.Context, *eventmodels.JobCompleted) error { called = true; return nil }))
	m := &broker.Message{Topic: "job-lifecycle", Body: []byte("not avro at all"), Headers: ceHeaders(eventmodels.TypeJobQueued, eventmodels.ContentTypeAvro)}
	if err := h(context.Background(), m); !errors.Is(err, broker.ErrSkipped) || broker.IsPermanent(err) || called {
		t.Fatalf("err %v, called %v; want ErrSkipped without a call", err, called)
	}
}

func TestRouterUndecodableIsPermanent(t *testing.T) {
	bus, _ := newBus(t)
	called := false
	h := handler(t, bus, routerFor(func(context.Context, *eventmodels.JobCompleted) error { called = true; return nil }))
	msgs, _ := messages(t, bus)
	m := msgs[3]
	m.Body = []byte("garbage")
	err := h(context.Background(), m)
	if !broker.IsPermanent(err) || !errors.Is(err, eventmodels.ErrMalformed) || called {
		t.Fatalf("err %v, called %v; want a permanent ErrMalformed without a call", err, called)
	}
}

var errHandler = errors.New("handler failed")

func TestRouterReturnsHandlerError(t *testing.T) {
	bus, _ := newBus(t)
	h := handler(t, bus, routerFor(func(context.Context, *eventmodels.JobCompleted) error { return errHandler }))
	msgs, _ := messages(t, bus)
	if err := h(context.Background(), msgs[3]); !errors.Is(err, errHandler) || broker.IsPermanent(err) {
		t.Fatalf("err = %v, want the handler's own, retryable", err)
	}
}

// TestRouterOnEvent: OnEvent takes every known type without a handler of
// its own.
func TestRouterOnEvent(t *testing.T) {
	bus, _ := newBus(t)
	r := events.NewRouter()
	var specific int
	var rest []eventmodels.Event
	events.On(r, func(context.Context, *eventmodels.JobCompleted) error { specific++; return nil })
	events.OnEvent(r, func(_ context.Context, e eventmodels.Event) error { rest = append(rest, e); return nil })
	h := handler(t, bus, r)
	msgs, evs := messages(t, bus)
	for _, m := range msgs {
		if err := h(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	if specific != 1 || len(rest) != len(evs)-1 {
		t.Fatalf("specific %d, rest %d; want 1 and %d", specific, len(rest), len(evs)-1)
	}
}

// ceHeaders returns the headers CloudEvents 1.0 requires, of type typ,
// and a content type.
func ceHeaders(typ, contentType string) broker.Headers {
	return broker.Headers{
		{Key: broker.HeaderSpecVersion, Value: broker.SpecVersion},
		{Key: broker.HeaderID, Value: eventmodels.NewEventID().String()},
		{Key: broker.HeaderSource, Value: "test"},
		{Key: broker.HeaderType, Value: typ},
		{Key: broker.HeaderContentType, Value: contentType},
	}
}

// TestRouterJSONWithoutTypeHeader: CloudEvents requires ce_type, so a JSON
// body without it is refused for good, although the body names its own
// type, before any handler runs.
func TestRouterJSONWithoutTypeHeader(t *testing.T) {
	bus, _ := newBus(t, events.WithJSON())
	calls := 0
	h := handler(t, bus, routerFor(func(context.Context, *eventmodels.JobCompleted) error { calls++; return nil }))
	for _, e := range samples.All()[:4] {
		m, err := bus.Message(e)
		if err != nil {
			t.Fatal(err)
		}
		m.Headers.Del(broker.HeaderType)
		err = h(context.Background(), m)
		var ce *events.CloudEventError
		if !broker.IsPermanent(err) || !errors.As(err, &ce) || !slices.Equal(ce.Attributes, []string{"type"}) {
			t.Fatalf("%s: err %v; want a permanent *CloudEventError naming type", e.Envelope().EventType, err)
		}
	}
	if calls != 0 {
		t.Fatalf("fn called %d times, want 0", calls)
	}
}

// TestRouterDecodesOnce: the retries of one delivery reuse the event
// decoded on the first attempt.
func TestRouterDecodesOnce(t *testing.T) {
	bus, _ := newBus(t)
	var seen []*eventmodels.JobCompleted
	h := broker.Retry(broker.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Microsecond, MaxBackoff: time.Microsecond})(
		handler(t, bus, routerFor(func(_ context.Context, e *eventmodels.JobCompleted) error {
			seen = append(seen, e)
			return errHandler
		})))
	msgs, _ := messages(t, bus)
	m := msgs[3]
	if err := h(context.Background(), m); !errors.Is(err, errHandler) {
		t.Fatalf("err = %v", err)
	}
	if len(seen) != 3 || seen[0] != seen[1] || seen[1] != seen[2] {
		t.Fatalf("%d attempts saw %v; want 3 attempts of one decoded event", len(seen), seen)
	}
	m.Body = []byte("garbage") // a new delivery would decode again; this one does not
	if err := h(context.Background(), m); !errors.Is(err, errHandler) {
		t.Fatalf("err = %v: the delivery was decoded again", err)
	}
}

// TestRouterRefusesUnregisteredTypes: a handler for a type the registry
// does not know is an error when the router is bound, not a silent no-op.
func TestRouterRefusesUnregisteredTypes(t *testing.T) {
	bus, _ := newBus(t)
	_, err := bus.Handler(routerFor(func(context.Context, *siteCalibrated) error { return nil }))
	if err == nil {
		t.Fatal("a handler for an unregistered type was accepted")
	}
	if _, err := bus.Handler(events.NewRouter()); err == nil {
		t.Fatal("a router without handlers was accepted")
	}
}

func TestMessageFromContext(t *testing.T) {
	if _, ok := events.MessageFromContext(context.Background()); ok {
		t.Fatal("a message in an empty ctx")
	}
	m := &broker.Message{Topic: "t"}
	if got, ok := events.MessageFromContext(events.ContextWithMessage(context.Background(), m)); !ok || got != m {
		t.Fatal("ContextWithMessage round trip failed")
	}
}

// siteCalibrated is a type of a downstream service.
type siteCalibrated struct {
	eventmodels.Base
	Site   string  `json:"site" avro:"site"`
	Offset float64 `json:"offset_mas" avro:"offset_mas"`
}

func (e *siteCalibrated) Key() string { return e.Site }
func (e *siteCalibrated) Validate() error {
	ve := eventmodels.ValidateBase(&e.Base)
	if e.Site == "" {
		ve.Add("site", "must not be empty")
	}
	return ve.Err()
}

// TestRouterDispatch: an event value reaches the handler of its Go type,
// else the OnEvent handler, else comes back as ErrSkipped; no Bus needed.
func TestRouterDispatch(t *testing.T) {
	evs := samples.All()
	r := events.NewRouter()
	var got []eventmodels.Event
	events.On(r, func(_ context.Context, e *eventmodels.JobCompleted) error { got = append(got, e); return nil })
	for _, e := range evs {
		err := r.Dispatch(context.Background(), e)
		if _, ok := e.(*eventmodels.JobCompleted); ok {
			require.NoError(t, err)
		} else {
			require.ErrorIs(t, err, broker.ErrSkipped, "%T", e)
		}
	}
	require.Equal(t, []eventmodels.Event{evs[3]}, got)
	require.Error(t, r.Dispatch(context.Background(), nil))

	boom := errors.New("boom")
	events.OnEvent(r, func(context.Context, eventmodels.Event) error { return boom })
	require.ErrorIs(t, r.Dispatch(context.Background(), evs[0]), boom, "the OnEvent handler takes the other types")
	require.NoError(t, r.Dispatch(context.Background(), evs[3]), "a type's own handler comes first")
}
