package otelevents

import (
	"context"
	"strconv"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// TracingOption configures a Tracing.
type TracingOption func(*Tracing)

// WithTracerProvider sets where spans go; default (and nil) the global
// OpenTelemetry provider, a no-op until the application installs an SDK.
func WithTracerProvider(tp trace.TracerProvider) TracingOption {
	return func(t *Tracing) { t.tp = tp }
}

// WithPropagator sets how trace context travels in headers; default W3C
// trace context and baggage.
func WithPropagator(p propagation.TextMapPropagator) TracingOption {
	return func(t *Tracing) { t.prop = p }
}

// WithSystem sets the messaging.system attribute of the spans, e.g.
// "kafka" or "rabbitmq"; default "cosmic-horizons".
func WithSystem(system string) TracingOption {
	return func(t *Tracing) { t.system = system }
}

// defaultSystem is the messaging.system attribute by default.
const defaultSystem = "cosmic-horizons"

// instrumentationName names this package's tracer and meter.
const instrumentationName = "github.com/cosmic-horizons/events/otelevents"

// Tracing traces publishing and consumption with OpenTelemetry, following
// the messaging semantic conventions. It is one hook, registered once:
// with events.WithHooks on a Bus (publish spans, and consumer spans for
// the Bus's subscriptions), or in a backend's Config.Hooks or a
// Subscription's Hooks (consumer spans).
//
//   - Publishing (events.PublishHook): a "publish" span of kind producer,
//     child of the span in ctx, whose context is written into every
//     message's headers (W3C traceparent/tracestate and baggage).
//   - Consuming (broker.HookWrapMessage): it extracts the producer's trace
//     context from the message headers and starts a span named
//     "process <topic>" of kind consumer that links to the producer's span;
//     when ctx carries no span of its own, the producer's span is also its
//     parent, so the trace runs on from publisher to handler. The
//     handler's ctx carries the span (and the baggage), so events the
//     handler publishes through a Bus continue the trace. A handler error
//     is recorded on the span (an exception event, status Error,
//     error.type); success leaves the status unset, as the conventions ask
//     of consumer spans.
//   - The pipeline's steps (broker observer hooks) are recorded on that
//     span: each failed attempt as an exception event, each retry, dead
//     letter, refused dead letter, discard, skip and duplicate as an event;
//     a dead letter, refused dead letter or discard also sets the status to
//     Error (the wrapper itself then sees nil).
//
// Consumer span attributes: messaging.system, messaging.operation.name and
// .type ("process"), messaging.destination.name (the topic),
// messaging.consumer.group.name, messaging.message.id (ce_id),
// messaging.message.body.size, cloudevents.event_type (ce_type), and, when
// present, messaging.kafka.message.key, messaging.destination.partition.id
// and messaging.kafka.offset; set only on spans that record.
type Tracing struct {
	tp     trace.TracerProvider
	prop   propagation.TextMapPropagator
	system string
	tracer trace.Tracer
	attr   attribute.KeyValue
}

// NewTracing returns a Tracing.
func NewTracing(opts ...TracingOption) *Tracing {
	t := &Tracing{system: defaultSystem}
	for _, o := range opts {
		o(t)
	}
	if t.tp == nil {
		t.tp = otel.GetTracerProvider()
	}
	if t.prop == nil {
		t.prop = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	t.tracer = t.tp.Tracer(instrumentationName, trace.WithSchemaURL(semconv.SchemaURL))
	t.attr = attribute.String(string(semconv.MessagingSystemKey), t.system)
	return t
}

// BeforePublish implements events.PublishHook.
func (t *Tracing) BeforePublish(ctx context.Context, msgs []*broker.Message) (context.Context, func(error)) {
	ctx, span := t.tracer.Start(ctx, "publish", trace.WithSpanKind(trace.SpanKindProducer))
	if span.IsRecording() {
		span.SetAttributes(t.attr, semconv.MessagingOperationTypeSend, attribute.Int("messaging.batch.message_count", len(msgs)))
	}
	for _, m := range msgs {
		t.prop.Inject(ctx, broker.HeaderCarrier{H: &m.Headers})
	}
	return ctx, func(err error) {
		if err != nil {
			span.RecordError(err)
			span.SetStatus(codes.Error, err.Error())
		}
		span.End()
	}
}

// WrapMessage implements broker.HookWrapMessage: a consumer span around
// the handling of each message.
func (t *Tracing) WrapMessage(next broker.Handler) broker.Handler {
	return func(ctx context.Context, m *broker.Message) error {
		// One extraction serves both the link and, when ctx carries no
		// span of its own (the usual case), the parent: the producer's
		// trace continues, with its baggage.
		extracted := t.prop.Extract(ctx, broker.HeaderCarrier{H: &m.Headers})
		created := trace.SpanContextFromContext(extracted)
		parent := extracted
		if trace.SpanContextFromContext(ctx).IsValid() {
			parent = ctx
		}
		sopts := []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindConsumer)}
		if created.IsValid() {
			sopts = append(sopts, trace.WithLinks(trace.Link{SpanContext: created}))
		}
		ctx, span := t.tracer.Start(parent, "process "+m.Topic, sopts...)
		if span.IsRecording() {
			// Attributes cost allocations: build them only for spans that
			// are kept (not for the no-op provider or dropped spans).
			span.SetAttributes(spanAttributes(t.attr, m)...)
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

// spanAttributes are the messaging attributes of m's consumer span.
func spanAttributes(system attribute.KeyValue, m *broker.Message) []attribute.KeyValue {
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
	if id := m.Header(broker.HeaderID); id != "" {
		attrs = append(attrs, semconv.MessagingMessageID(id))
	}
	if typ := m.Header(broker.HeaderType); typ != "" {
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

// OnHandled implements broker.HookHandled: a failed attempt is an
// exception event.
func (t *Tracing) OnHandled(ctx context.Context, m *broker.Message, _ time.Duration, err error) {
	if err == nil {
		return
	}
	trace.SpanFromContext(ctx).RecordError(err, trace.WithAttributes(attribute.Int("messaging.attempt", m.Delivery.Attempt)))
}

// OnRetry implements broker.HookRetry.
func (t *Tracing) OnRetry(ctx context.Context, _ *broker.Message, attempt int, _ error) {
	trace.SpanFromContext(ctx).AddEvent("retry", trace.WithAttributes(attribute.Int("messaging.attempt", attempt)))
}

// OnDeadLetter implements broker.HookDeadLetter.
func (t *Tracing) OnDeadLetter(ctx context.Context, m *broker.Message, err error) {
	span := trace.SpanFromContext(ctx)
	span.AddEvent("dead_letter", trace.WithAttributes(attribute.Int("messaging.attempt", m.Delivery.Attempt)))
	span.SetStatus(codes.Error, "dead-lettered: "+err.Error())
}

// OnDeadLetterFailed implements broker.HookDeadLetterFailed.
func (t *Tracing) OnDeadLetterFailed(ctx context.Context, _ *broker.Message, handlerErr, publishErr error) {
	span := trace.SpanFromContext(ctx)
	span.AddEvent("dead_letter_refused", trace.WithAttributes(attribute.String("publish.error", publishErr.Error())))
	span.SetStatus(codes.Error, "dead letter refused: "+handlerErr.Error())
}

// OnDiscard implements broker.HookDiscard.
func (t *Tracing) OnDiscard(ctx context.Context, m *broker.Message, err error) {
	span := trace.SpanFromContext(ctx)
	span.AddEvent("discard", trace.WithAttributes(attribute.Int("messaging.attempt", m.Delivery.Attempt)))
	span.SetStatus(codes.Error, "discarded: "+err.Error())
}

// OnSkipped implements broker.HookSkipped.
func (t *Tracing) OnSkipped(ctx context.Context, _ *broker.Message, _ error) {
	trace.SpanFromContext(ctx).AddEvent("skipped")
}

// OnDuplicate implements broker.HookDuplicate.
func (t *Tracing) OnDuplicate(ctx context.Context, _ *broker.Message) {
	trace.SpanFromContext(ctx).AddEvent("duplicate")
}

var (
	_ broker.HookWrapMessage      = (*Tracing)(nil)
	_ broker.HookHandled          = (*Tracing)(nil)
	_ broker.HookRetry            = (*Tracing)(nil)
	_ broker.HookDeadLetter       = (*Tracing)(nil)
	_ broker.HookDeadLetterFailed = (*Tracing)(nil)
	_ broker.HookDiscard          = (*Tracing)(nil)
	_ broker.HookSkipped          = (*Tracing)(nil)
	_ broker.HookDuplicate        = (*Tracing)(nil)
	_ events.PublishHook          = (*Tracing)(nil)
)
