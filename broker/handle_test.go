package broker_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/internal/samples"
)

// sampleMessages returns the Bus message of every sample, Avro-encoded,
// and the samples (their event IDs differ from call to call).
func sampleMessages(t *testing.T) ([]*broker.Message, []eventmodels.Event) {
	t.Helper()
	bus, _ := newBus(t)
	var out []*broker.Message
	events := samples.All()
	for _, e := range events {
		m, err := bus.Message(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, m)
	}
	return out, events
}

func TestHandleEventTyped(t *testing.T) {
	d := newDecoder(t)
	var got []*eventmodels.JobCompleted
	var fromCtx []*broker.Message
	h := broker.HandleEvent(d, func(ctx context.Context, e *eventmodels.JobCompleted) error {
		got = append(got, e)
		m, ok := broker.MessageFromContext(ctx)
		if !ok {
			t.Error("no message in the handler's ctx")
		}
		fromCtx = append(fromCtx, m)
		return nil
	})
	msgs, events := sampleMessages(t)
	for i, m := range msgs {
		err := h(context.Background(), m)
		if i == 3 && err != nil {
			t.Fatalf("%s: %v", m.Header(broker.HeaderType), err)
		}
		if i != 3 && !errors.Is(err, broker.ErrSkipped) {
			t.Fatalf("%s: err %v, want ErrSkipped", m.Header(broker.HeaderType), err)
		}
	}
	want := events[3]
	if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
		t.Fatalf("fn got %v, want only the job.completed sample", got)
	}
	if fromCtx[0] != msgs[3] {
		t.Fatal("MessageFromContext is not the message being handled")
	}
}

// TestHandleEventSkipsOtherTypesWithoutDecoding: the type comes from the
// header, so a body that would not decode is never looked at.
func TestHandleEventSkipsOtherTypesWithoutDecoding(t *testing.T) {
	d := newDecoder(t)
	called := false
	h := broker.HandleEvent(d, func(context.Context, *eventmodels.JobCompleted) error { called = true; return nil })
	m := &broker.Message{Topic: "job-lifecycle", Body: []byte("not avro at all"), Headers: broker.Headers{
		{Key: broker.HeaderType, Value: eventmodels.TypeJobQueued},
		{Key: broker.HeaderContentType, Value: eventmodels.ContentTypeAvro},
	}}
	if err := h(context.Background(), m); !errors.Is(err, broker.ErrSkipped) || broker.IsPermanent(err) || called {
		t.Fatalf("err %v, called %v; want ErrSkipped without a call", err, called)
	}
}

// TestHandleEventUnknownTypeIsPermanent: a typed handler does not skip a
// type the registry does not know; it fails for good, so the message is
// dead-lettered rather than acknowledged unseen.
func TestHandleEventUnknownTypeIsPermanent(t *testing.T) {
	d := newDecoder(t)
	called := false
	h := broker.HandleEvent(d, func(context.Context, *eventmodels.JobCompleted) error { called = true; return nil })
	m := &broker.Message{Topic: "job-lifecycle", Body: []byte("{}"), Headers: broker.Headers{
		{Key: broker.HeaderType, Value: "job.exploded"},
		{Key: broker.HeaderContentType, Value: eventmodels.ContentTypeJSON},
	}}
	err := h(context.Background(), m)
	if !broker.IsPermanent(err) || !errors.Is(err, eventmodels.ErrUnknownEventType) || called {
		t.Fatalf("err %v, called %v; want a permanent ErrUnknownEventType without a call", err, called)
	}
}

func TestHandleEventUndecodableIsPermanent(t *testing.T) {
	d := newDecoder(t)
	called := false
	h := broker.HandleEvent(d, func(context.Context, *eventmodels.JobCompleted) error { called = true; return nil })
	msgs, _ := sampleMessages(t)
	m := msgs[3]
	m.Body = []byte("garbage")
	err := h(context.Background(), m)
	if !broker.IsPermanent(err) || !errors.Is(err, eventmodels.ErrMalformed) || called {
		t.Fatalf("err %v, called %v; want a permanent ErrMalformed without a call", err, called)
	}
}

func TestHandleEventReturnsHandlerError(t *testing.T) {
	d := newDecoder(t)
	h := broker.HandleEvent(d, func(context.Context, *eventmodels.JobCompleted) error { return errBoom })
	msgs, _ := sampleMessages(t)
	if err := h(context.Background(), msgs[3]); !errors.Is(err, errBoom) || broker.IsPermanent(err) {
		t.Fatalf("err = %v, want the handler's own, retryable", err)
	}
}

func TestHandleEventAnyType(t *testing.T) {
	d := newDecoder(t)
	var got []eventmodels.Event
	h := broker.HandleEvent(d, func(_ context.Context, e eventmodels.Event) error { got = append(got, e); return nil })
	msgs, events := sampleMessages(t)
	for _, m := range msgs {
		if err := h(context.Background(), m); err != nil {
			t.Fatal(err)
		}
	}
	if !reflect.DeepEqual(got, events) {
		t.Fatalf("got %d events, want every sample", len(got))
	}
	// An event type this consumer does not know cannot be decoded: it is
	// a permanent failure, not a silent skip.
	m := msgs[0]
	m.SetHeader(broker.HeaderType, "job.unheard_of")
	if err := h(context.Background(), m); !broker.IsPermanent(err) || !errors.Is(err, eventmodels.ErrUnknownEventType) {
		t.Fatalf("err = %v, want a permanent ErrUnknownEventType", err)
	}
}

// TestHandleEventJSONWithoutTypeHeader: a JSON body names its own type; a
// message of another type is decoded, then skipped.
func TestHandleEventJSONWithoutTypeHeader(t *testing.T) {
	reg := eventmodels.NewRegistry()
	bus, _ := newBus(t, broker.WithRegistry(reg), broker.WithCodec(eventmodels.NewJSONCodec(reg, 0)))
	d, err := broker.NewDecoder(reg, nil)
	if err != nil {
		t.Fatal(err)
	}
	calls := 0
	h := broker.HandleEvent(d, func(context.Context, *eventmodels.JobCompleted) error { calls++; return nil })
	for _, e := range samples.All()[:4] {
		m, err := bus.Message(context.Background(), e)
		if err != nil {
			t.Fatal(err)
		}
		m.Headers.Del(broker.HeaderType)
		err = h(context.Background(), m)
		if e.Envelope().EventType == eventmodels.TypeJobCompleted && err != nil || e.Envelope().EventType != eventmodels.TypeJobCompleted && !errors.Is(err, broker.ErrSkipped) {
			t.Fatalf("%s: %v", e.Envelope().EventType, err)
		}
	}
	if calls != 1 {
		t.Fatalf("fn called %d times, want 1", calls)
	}
}

func TestMessageFromContext(t *testing.T) {
	if _, ok := broker.MessageFromContext(context.Background()); ok {
		t.Fatal("a message in an empty ctx")
	}
	m := newMessage()
	if got, ok := broker.MessageFromContext(broker.ContextWithMessage(context.Background(), m)); !ok || got != m {
		t.Fatal("ContextWithMessage round trip failed")
	}
}

// TestHandleEventDecodesOnce: retries of one delivery reuse the event
// decoded on the first attempt.
func TestHandleEventDecodesOnce(t *testing.T) {
	d := newDecoder(t)
	var seen []*eventmodels.JobCompleted
	h := broker.Retry(broker.RetryPolicy{MaxAttempts: 3, InitialBackoff: time.Microsecond, MaxBackoff: time.Microsecond})(
		broker.HandleEvent(d, func(_ context.Context, e *eventmodels.JobCompleted) error {
			seen = append(seen, e)
			return errBoom
		}))
	msgs, _ := sampleMessages(t)
	m := msgs[3]
	if err := h(context.Background(), m); !errors.Is(err, errBoom) {
		t.Fatalf("err = %v", err)
	}
	if len(seen) != 3 || seen[0] != seen[1] || seen[1] != seen[2] {
		t.Fatalf("%d attempts saw %v; want 3 attempts of one decoded event", len(seen), seen)
	}
	m.Body = []byte("garbage") // a new delivery would decode again; this one does not
	if err := h(context.Background(), m); !errors.Is(err, errBoom) {
		t.Fatalf("err = %v: the delivery was decoded again", err)
	}
}
