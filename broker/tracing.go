package broker

import (
	"context"
	"strconv"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// TracingOption configures the Tracing middleware.
type TracingOption func(*tracingConfig)

type tracingConfig struct {
	system string
}

// TracingSystem sets the messaging.system attribute of the spans, e.g.
// "kafka" or "rabbitmq"; default "cosmic-horizons", as the Bus writes.
func TracingSystem(system string) TracingOption {
	return func(c *tracingConfig) { c.system = system }
}

// Tracing starts a consumer span around each message, following the
// OpenTelemetry messaging semantic conventions. It extracts the producer's
// trace context (W3C traceparent/tracestate and baggage, as the Bus writes
// them) from the message headers, and starts a span named "process <topic>"
// of kind consumer that links to the producer's span; when ctx carries no
// span of its own, the producer's span is also its parent, so the trace
// runs on from publisher to handler. The attributes are set right after the
// span starts, and only on spans that record (samplers see the span name,
// kind and link). The handler's ctx carries the span
// (and the extracted baggage), so events the handler publishes through a
// Bus continue the trace.
//
// Attributes: messaging.system, messaging.operation.name and .type
// ("process"), messaging.destination.name (the topic),
// messaging.consumer.group.name, messaging.message.id (ce_id),
// messaging.message.body.size, cloudevents.event_type (ce_type), and, when
// present, messaging.kafka.message.key, messaging.destination.partition.id
// and messaging.kafka.offset. A handler error is recorded on the span
// (an exception event, status Error, error.type); success leaves the status
// unset, as the conventions ask of consumer spans.
//
// Placed in Pipeline.Middleware it sees the outcome after retries and the
// failure policy, where a dead-lettered message is a nil; add SpanHook to
// the pipeline's Hooks to see each failed attempt, retry and dead letter on
// the span as well.
//
// tp nil means the global OpenTelemetry provider (a no-op until the
// application installs an SDK); prop nil means W3C trace context and
// baggage.
func Tracing(tp trace.TracerProvider, prop propagation.TextMapPropagator, opts ...TracingOption) Middleware {
	cfg := tracingConfig{system: defaultMessagingSystem}
	for _, o := range opts {
		o(&cfg)
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if prop == nil {
		prop = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	tracer := tp.Tracer(instrumentationName, trace.WithSchemaURL(semconv.SchemaURL))
	system := attribute.String(string(semconv.MessagingSystemKey), cfg.system)
	return func(next Handler) Handler {
		return func(ctx context.Context, m *Message) error {
			// One extraction serves both the link and, when ctx carries no
			// span of its own (the usual case), the parent: the producer's
			// trace continues, with its baggage.
			extracted := prop.Extract(ctx, HeaderCarrier{&m.Headers})
			created := trace.SpanContextFromContext(extracted)
			parent := extracted
			if trace.SpanContextFromContext(ctx).IsValid() {
				parent = ctx
			}
			sopts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
			if created.IsValid() {
				sopts = append(sopts, trace.WithLinks(trace.Link{SpanContext: created}))
			}
			ctx, span := tracer.Start(parent, "process "+m.Topic, sopts...)
			if span.IsRecording() {
				// Attributes cost allocations: build them only for spans
				// that are kept (not for the no-op provider or spans the
				// sampler dropped).
				span.SetAttributes(spanAttributes(system, m)...)
			}
			defer span.End()
			err := next(ctx, m)
			if err != nil {
				span.RecordError(err)
				span.SetStatus(codes.Error, err.Error())
				span.SetAttributes(semconv.ErrorType(err))
			}
			return err
		}
	}
}

// spanAttributes are the messaging attributes of m's consumer span.
func spanAttributes(system attribute.KeyValue, m *Message) []attribute.KeyValue {
	attrs := make([]attribute.KeyValue, 0, 13)
	attrs = append(attrs, system,
		semconv.MessagingOperationName("process"),
		semconv.MessagingOperationTypeProcess,
		semconv.MessagingDestinationName(m.Topic),
		semconv.MessagingMessageBodySize(len(m.Body)),
	)
	if m.Delivery.Group != "" {
		attrs = append(attrs, semconv.MessagingConsumerGroupName(m.Delivery.Group))
	}
	if id := m.Header(HeaderID); id != "" {
		attrs = append(attrs, semconv.MessagingMessageID(id))
	}
	if typ := m.Header(HeaderType); typ != "" {
		attrs = append(attrs, semconv.CloudEventsEventType(typ))
	}
	if m.Key != "" {
		attrs = append(attrs, semconv.MessagingKafkaMessageKey(m.Key))
	}
	if m.Delivery.Partition >= 0 && m.Delivery.Offset >= 0 {
		attrs = append(attrs,
			semconv.MessagingDestinationPartitionID(strconv.Itoa(int(m.Delivery.Partition))),
			semconv.MessagingKafkaOffset(int(m.Delivery.Offset)))
	}
	return attrs
}

// SpanHook records the pipeline's steps on the span in the handler's ctx
// (the one Tracing started): each failed attempt as an exception event, each
// retry, dead letter, discard and skipped duplicate as an event; a dead
// letter or discard also sets the span's status to Error, since the
// middleware itself then sees nil. Add it to Pipeline.Hooks and
// DedupeHooks. The zero value is ready to use.
type SpanHook struct{}

// OnHandled implements HookHandled.
func (SpanHook) OnHandled(ctx context.Context, m *Message, _ time.Duration, err error) {
	if err == nil {
		return
	}
	trace.SpanFromContext(ctx).RecordError(err, trace.WithAttributes(attribute.Int("messaging.attempt", m.Delivery.Attempt)))
}

// OnRetry implements HookRetry.
func (SpanHook) OnRetry(ctx context.Context, _ *Message, attempt int, _ error) {
	trace.SpanFromContext(ctx).AddEvent("retry", trace.WithAttributes(attribute.Int("messaging.attempt", attempt)))
}

// OnDeadLetter implements HookDeadLetter.
func (SpanHook) OnDeadLetter(ctx context.Context, m *Message, err error) {
	span := trace.SpanFromContext(ctx)
	span.AddEvent("dead_letter", trace.WithAttributes(attribute.Int("messaging.attempt", m.Delivery.Attempt)))
	span.SetStatus(codes.Error, "dead-lettered: "+err.Error())
}

// OnDiscard implements HookDiscard.
func (SpanHook) OnDiscard(ctx context.Context, m *Message, err error) {
	span := trace.SpanFromContext(ctx)
	span.AddEvent("discard", trace.WithAttributes(attribute.Int("messaging.attempt", m.Delivery.Attempt)))
	span.SetStatus(codes.Error, "discarded: "+err.Error())
}

// OnDuplicate implements HookDuplicate.
func (SpanHook) OnDuplicate(ctx context.Context, _ *Message) {
	trace.SpanFromContext(ctx).AddEvent("duplicate")
}

var (
	_ HookHandled    = SpanHook{}
	_ HookRetry      = SpanHook{}
	_ HookDeadLetter = SpanHook{}
	_ HookDiscard    = SpanHook{}
	_ HookDuplicate  = SpanHook{}
)
