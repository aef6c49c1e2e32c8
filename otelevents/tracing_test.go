package otelevents_test

import (
	"context"
	"slices"
	"testing"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/otelevents"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/baggage"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

func newTracer(t *testing.T) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	t.Helper()
	rec := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, rec
}

// producerMessage returns a message whose headers carry the context of a
// producer span (ended), and that span's context.
func producerMessage(t *testing.T, tp trace.TracerProvider) (*broker.Message, trace.SpanContext) {
	t.Helper()
	ctx, span := tp.Tracer("producer").Start(context.Background(), "send", trace.WithSpanKind(trace.SpanKindProducer))
	span.End()
	m := newMessage()
	propagation.TraceContext{}.Inject(ctx, broker.HeaderCarrier{H: &m.Headers})
	if m.Header(broker.HeaderTraceParent) == "" {
		t.Fatal("no traceparent injected")
	}
	return m, span.SpanContext()
}

func spanNamed(t *testing.T, rec *tracetest.SpanRecorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	for _, s := range rec.Ended() {
		if s.Name() == name {
			return s
		}
	}
	t.Fatalf("no span %q among %d", name, len(rec.Ended()))
	return nil
}

func attrMap(kvs []attribute.KeyValue) map[string]string {
	out := map[string]string{}
	for _, kv := range kvs {
		out[string(kv.Key)] = kv.Value.String()
	}
	return out
}

func TestTracingContinuesProducerTrace(t *testing.T) {
	tp, rec := newTracer(t)
	m, producer := producerMessage(t, tp)
	var handlerSpan trace.SpanContext
	h := otelevents.NewTracing(otelevents.WithTracerProvider(tp)).WrapMessage(func(ctx context.Context, _ *broker.Message) error {
		handlerSpan = trace.SpanContextFromContext(ctx)
		return nil
	})
	if err := h(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	s := spanNamed(t, rec, "process job-lifecycle")
	if s.SpanKind() != trace.SpanKindConsumer {
		t.Fatalf("kind %v, want consumer", s.SpanKind())
	}
	if s.Parent().SpanID() != producer.SpanID() || s.SpanContext().TraceID() != producer.TraceID() || !s.Parent().IsRemote() {
		t.Fatalf("parent %v, want the producer span %v (remote)", s.Parent(), producer)
	}
	if len(s.Links()) != 1 || !s.Links()[0].SpanContext.Equal(producer.WithRemote(true)) {
		t.Fatalf("links %v, want one to the producer span", s.Links())
	}
	if handlerSpan.SpanID() != s.SpanContext().SpanID() {
		t.Fatal("the handler's ctx does not carry the consumer span")
	}
	want := map[string]string{
		"messaging.system":                   "cosmic-horizons",
		"messaging.operation.name":           "process",
		"messaging.operation.type":           "process",
		"messaging.destination.name":         "job-lifecycle",
		"messaging.consumer.group.name":      "g",
		"messaging.message.id":               m.Header(broker.HeaderID),
		"messaging.message.body.size":        "4",
		"cloudevents.event_type":             "job.queued",
		"messaging.kafka.message.key":        "job-1",
		"messaging.destination.partition.id": "3",
		"messaging.kafka.offset":             "42",
	}
	got := attrMap(s.Attributes())
	for k, v := range want {
		if got[k] != v {
			t.Errorf("attribute %s = %q, want %q", k, got[k], v)
		}
	}
	if s.Status().Code != codes.Unset {
		t.Errorf("status %v, want unset on success", s.Status())
	}
}

func TestTracingRecordsError(t *testing.T) {
	tp, rec := newTracer(t)
	m, _ := producerMessage(t, tp)
	err := otelevents.NewTracing(otelevents.WithTracerProvider(tp), otelevents.WithSystem("kafka")).WrapMessage(failing(broker.Permanent(errBoom)))(context.Background(), m)
	if err == nil {
		t.Fatal("the handler error was swallowed")
	}
	s := spanNamed(t, rec, "process job-lifecycle")
	if s.Status().Code != codes.Error || s.Status().Description != "boom" {
		t.Fatalf("status %v, want Error: boom", s.Status())
	}
	if !slices.ContainsFunc(s.Events(), func(e sdktrace.Event) bool { return e.Name == "exception" }) {
		t.Fatalf("events %v, want an exception", s.Events())
	}
	got := attrMap(s.Attributes())
	if got["error.type"] == "" || got["messaging.system"] != "kafka" {
		t.Fatalf("attributes %v, want error.type and messaging.system=kafka", got)
	}
}

func TestTracingWithoutProducerContext(t *testing.T) {
	tp, rec := newTracer(t)
	m := &broker.Message{Topic: "t", Delivery: broker.Delivery{Partition: -1, Offset: -1}} // no headers, AMQP-like
	if err := otelevents.NewTracing(otelevents.WithTracerProvider(tp)).WrapMessage(failing(nil))(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	s := spanNamed(t, rec, "process t")
	if s.Parent().IsValid() || len(s.Links()) != 0 {
		t.Fatalf("parent %v, links %v; want a root span without links", s.Parent(), s.Links())
	}
	got := attrMap(s.Attributes())
	for _, k := range []string{"messaging.destination.partition.id", "messaging.kafka.offset", "messaging.kafka.message.key", "messaging.message.id", "messaging.consumer.group.name"} {
		if _, ok := got[k]; ok {
			t.Errorf("attribute %s set for a message without it", k)
		}
	}
}

// TestTracingUnderAmbientSpan: when the subscriber's ctx already carries a
// span, the process span is its child and links to the producer.
func TestTracingUnderAmbientSpan(t *testing.T) {
	tp, rec := newTracer(t)
	m, producer := producerMessage(t, tp)
	ctx, ambient := tp.Tracer("subscriber").Start(context.Background(), "receive")
	if err := otelevents.NewTracing(otelevents.WithTracerProvider(tp)).WrapMessage(failing(nil))(ctx, m); err != nil {
		t.Fatal(err)
	}
	ambient.End()
	s := spanNamed(t, rec, "process job-lifecycle")
	if s.Parent().SpanID() != ambient.SpanContext().SpanID() {
		t.Fatalf("parent %v, want the ambient span", s.Parent())
	}
	if len(s.Links()) != 1 || s.Links()[0].SpanContext.SpanID() != producer.SpanID() {
		t.Fatalf("links %v, want the producer span", s.Links())
	}
}

func TestTracingPropagatesBaggage(t *testing.T) {
	tp, _ := newTracer(t)
	m, _ := producerMessage(t, tp)
	m.SetHeader("baggage", "tenant=vlass")
	var tenant string
	_ = otelevents.NewTracing(otelevents.WithTracerProvider(tp)).WrapMessage(func(ctx context.Context, _ *broker.Message) error {
		tenant = baggage.FromContext(ctx).Member("tenant").Value()
		return nil
	})(context.Background(), m)
	if tenant != "vlass" {
		t.Fatalf("baggage tenant = %q, want vlass", tenant)
	}
}

// TestTracingCustomPropagator: only the given propagator is used.
func TestTracingCustomPropagator(t *testing.T) {
	tp, rec := newTracer(t)
	m, _ := producerMessage(t, tp)
	if err := otelevents.NewTracing(otelevents.WithTracerProvider(tp), otelevents.WithPropagator(propagation.Baggage{})).WrapMessage(failing(nil))(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if s := spanNamed(t, rec, "process job-lifecycle"); s.Parent().IsValid() {
		t.Fatal("a baggage-only propagator extracted a trace parent")
	}
}

func TestTracingDefaultsToGlobalProvider(t *testing.T) {
	called := false
	h := otelevents.NewTracing().WrapMessage(func(ctx context.Context, _ *broker.Message) error { called = true; return nil })
	if err := h(context.Background(), newMessage()); err != nil || !called {
		t.Fatalf("err %v, called %v", err, called)
	}
}

// TestTracingInPipeline: inside a pipeline the span shows each failed
// attempt, the retry and the dead letter, and ends in Error although the pipeline
// returned nil.
func TestTracingInPipeline(t *testing.T) {
	tp, rec := newTracer(t)
	m, _ := producerMessage(t, tp)
	p, pub := pipeline(broker.Subscription{Retry: broker.RetryPolicy{MaxAttempts: 2}})
	p.Hooks = []broker.Hook{otelevents.NewTracing(otelevents.WithTracerProvider(tp))} // one hook: the span and its events
	if err := p.Wrap(failing(errBoom))(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if len(pub.Messages()) != 1 {
		t.Fatal("not dead-lettered")
	}
	s := spanNamed(t, rec, "process job-lifecycle")
	var names []string
	for _, e := range s.Events() {
		names = append(names, e.Name)
	}
	if want := []string{"exception", "retry", "exception", "dead_letter"}; !slices.Equal(names, want) {
		t.Fatalf("events %v, want %v", names, want)
	}
	if s.Status().Code != codes.Error {
		t.Fatalf("status %v, want Error after a dead letter", s.Status())
	}
}

func TestTracingObserverEvents(t *testing.T) {
	tp, rec := newTracer(t)
	ctx, span := tp.Tracer("t").Start(context.Background(), "s")
	m := newMessage()
	tr := otelevents.NewTracing()
	tr.OnDuplicate(ctx, m)
	tr.OnDiscard(ctx, m, errBoom)
	tr.OnHandled(ctx, m, 0, nil) // success: nothing
	span.End()
	s := spanNamed(t, rec, "s")
	if len(s.Events()) != 2 || s.Events()[0].Name != "duplicate" || s.Events()[1].Name != "discard" || s.Status().Code != codes.Error {
		t.Fatalf("events %v, status %v", s.Events(), s.Status())
	}
}

// BenchmarkTracingNoopProvider is the middleware's cost when the application
// installed no OpenTelemetry SDK (the default): one trace-context extraction,
// no attributes.
func BenchmarkTracingNoopProvider(b *testing.B) {
	bus, err := events.NewBus(&capturePublisher{})
	if err != nil {
		b.Fatal(err)
	}
	m, err := bus.Message(eventmodels.NewJobQueued("u", "job-1", "batch", 1))
	if err != nil {
		b.Fatal(err)
	}
	m.Delivery = broker.Delivery{Group: "g", Partition: 3, Offset: 42, Attempt: 1}
	h := otelevents.NewTracing(otelevents.WithTracerProvider(noop.NewTracerProvider())).WrapMessage(func(context.Context, *broker.Message) error { return nil })
	b.ReportAllocs()
	for b.Loop() {
		if err := h(context.Background(), m); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTracingPublish: as a Bus hook, a publish is a producer span, child of
// the span in ctx, and every message carries its context.
func TestTracingPublish(t *testing.T) {
	tp, rec := newTracer(t)
	pub := &capturePublisher{}
	bus, err := events.NewBus(pub, events.WithHooks(otelevents.NewTracing(otelevents.WithTracerProvider(tp))))
	if err != nil {
		t.Fatal(err)
	}
	ctx, parent := tp.Tracer("app").Start(context.Background(), "handle request")
	if err := bus.Publish(ctx, eventmodels.NewJobQueued("u", "job-1", "batch", 1), eventmodels.NewJobQueued("u", "job-2", "batch", 2)); err != nil {
		t.Fatal(err)
	}
	parent.End()
	publish := spanNamed(t, rec, "publish")
	want := "00-" + parent.SpanContext().TraceID().String() + "-" + publish.SpanContext().SpanID().String() + "-01"
	for _, m := range pub.Messages() {
		if got := m.Header(broker.HeaderTraceParent); got != want {
			t.Fatalf("traceparent %q, want %q", got, want)
		}
	}
	if publish.SpanKind() != trace.SpanKindProducer || publish.Parent().SpanID() != parent.SpanContext().SpanID() {
		t.Fatalf("publish span kind %v parent %v", publish.SpanKind(), publish.Parent())
	}
}

// TestBusRefusesNonHooks: a value that is no hook would do nothing.
func TestBusRefusesNonHooks(t *testing.T) {
	if _, err := events.NewBus(&capturePublisher{}, events.WithHooks(struct{}{})); err == nil {
		t.Fatal("a hook implementing nothing was accepted")
	}
}
