package broker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/schemas"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Bus publishes typed events through a Publisher: it validates each event,
// routes it to its topic (from the Registry), keys it with Key(), encodes
// the body with the codec, and writes the CloudEvents headers and W3C trace
// context. It is safe for concurrent use.
type Bus struct {
	pub    Publisher
	reg    *eventmodels.Registry
	codec  eventmodels.Codec
	source string
	route  func(info eventmodels.TypeInfo, e eventmodels.Event) string
	prop   propagation.TextMapPropagator
	tracer trace.Tracer
}

// BusOption configures a Bus.
type BusOption func(*Bus)

// WithRegistry sets the registry of event types; default
// eventmodels.NewRegistry(). The codec must be built over the same registry.
func WithRegistry(reg *eventmodels.Registry) BusOption { return func(b *Bus) { b.reg = reg } }

// WithCodec sets the body encoding; default the Avro codec of package
// schemas over the bus's registry.
func WithCodec(c eventmodels.Codec) BusOption { return func(b *Bus) { b.codec = c } }

// WithSource sets the ce_source header, the URI-reference naming the
// publishing service; default "cosmic-horizons".
func WithSource(source string) BusOption { return func(b *Bus) { b.source = source } }

// WithRoute overrides the topic of each event (default: the registered
// topic), e.g. to send job status changes to a real-time exchange.
func WithRoute(route func(info eventmodels.TypeInfo, e eventmodels.Event) string) BusOption {
	return func(b *Bus) { b.route = route }
}

// WithPropagator sets how trace context is written into headers; default
// W3C trace context and baggage.
func WithPropagator(p propagation.TextMapPropagator) BusOption { return func(b *Bus) { b.prop = p } }

// WithTracerProvider sets where publish spans go; default (and nil) the
// global OpenTelemetry provider (a no-op until the application installs an
// SDK).
func WithTracerProvider(tp trace.TracerProvider) BusOption {
	return func(b *Bus) {
		if tp == nil {
			b.tracer = nil
			return
		}
		b.tracer = tp.Tracer(instrumentationName)
	}
}

const instrumentationName = "github.com/cosmic-horizons/events/broker"

// defaultMessagingSystem is the messaging.system attribute of the spans of
// this package, on the publishing (Bus) and the consuming (Tracing) side.
const defaultMessagingSystem = "cosmic-horizons"

// NewBus returns a Bus publishing through pub.
func NewBus(pub Publisher, opts ...BusOption) (*Bus, error) {
	if pub == nil {
		return nil, errors.New("broker: NewBus needs a Publisher")
	}
	b := &Bus{pub: pub, source: "cosmic-horizons"}
	for _, o := range opts {
		o(b)
	}
	if b.reg == nil {
		b.reg = eventmodels.NewRegistry()
	}
	if b.codec == nil {
		c, err := schemas.NewAvroCodec(b.reg)
		if err != nil {
			return nil, err
		}
		b.codec = c
	}
	if b.route == nil {
		b.route = func(info eventmodels.TypeInfo, _ eventmodels.Event) string { return info.Topic }
	}
	if b.prop == nil {
		b.prop = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	}
	if b.tracer == nil {
		b.tracer = otel.GetTracerProvider().Tracer(instrumentationName)
	}
	return b, nil
}

// Registry returns the bus's registry.
func (b *Bus) Registry() *eventmodels.Registry { return b.reg }

// Codec returns the bus's codec.
func (b *Bus) Codec() eventmodels.Codec { return b.codec }

// Publish validates, encodes and publishes events, and returns when the
// backend confirmed every one (see Publisher.Publish). If any event is
// invalid or cannot be encoded, nothing is published and the error matches
// ErrInvalidMessage (and wraps the *eventmodels.ValidationError).
func (b *Bus) Publish(ctx context.Context, events ...eventmodels.Event) error {
	if len(events) == 0 {
		return nil
	}
	ctx, span := b.tracer.Start(ctx, "publish", trace.WithSpanKind(trace.SpanKindProducer))
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(attribute.String("messaging.system", defaultMessagingSystem), attribute.Int("messaging.batch.message_count", len(events)))
	}
	msgs := make([]*Message, len(events))
	for i, e := range events {
		m, err := b.Message(ctx, e)
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
			return err
		}
		msgs[i] = m
	}
	if err := b.pub.Publish(ctx, msgs...); err != nil {
		span.SetStatus(codes.Error, err.Error())
		return err
	}
	return nil
}

// ceTime is the layout of ce_time: RFC 3339 with milliseconds, UTC.
const ceTime = "2006-01-02T15:04:05.000Z07:00"

// Message returns the message Publish would send for e, with the trace
// context of ctx in its headers.
func (b *Bus) Message(ctx context.Context, e eventmodels.Event) (*Message, error) {
	if e == nil {
		return nil, fmt.Errorf("%w: nil event", ErrInvalidMessage)
	}
	info, err := b.reg.InfoOf(e)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidMessage, err)
	}
	body, err := b.codec.Encode(e)
	if err != nil {
		return nil, fmt.Errorf("%w: encode %s: %w", ErrInvalidMessage, info.EventType, err)
	}
	env := e.Envelope()
	h := make(Headers, 0, 12)
	h = append(h,
		Header{HeaderSpecVersion, SpecVersion},
		Header{HeaderID, env.EventID.String()},
		Header{HeaderType, env.EventType},
		Header{HeaderSource, b.source},
		Header{HeaderTime, env.Timestamp.UTC().Format(ceTime)},
		Header{HeaderCorrelationID, env.CorrelationID.String()},
		Header{HeaderContentType, b.codec.ContentType()},
	)
	if key := e.Key(); key != "" {
		h = append(h, Header{HeaderSubject, key})
	}
	if ds := b.codec.DataSchema(env.EventType); ds != "" {
		h = append(h, Header{HeaderDataSchema, DataSchemaURI(ds)})
	}
	b.prop.Inject(ctx, HeaderCarrier{&h})
	return &Message{Topic: b.route(info, e), Key: e.Key(), Headers: h, Body: body}, nil
}

// DataSchemaPrefix makes a schema name and version ("job-metrics/v2", as
// eventmodels.Codec.DataSchema returns it) into the absolute URI that
// CloudEvents requires of dataschema: "urn:cosmic-horizons:schema:job-metrics/v2".
const DataSchemaPrefix = "urn:cosmic-horizons:schema:"

// DataSchemaURI returns the ce_dataschema value of a schema name and
// version such as "job-metrics/v2": DataSchemaPrefix + ds.
func DataSchemaURI(ds string) string { return DataSchemaPrefix + ds }

// Decoder turns messages back into typed events, using the headers to pick
// the codec (content-type), the type (ce_type) and the schema version
// (ce_dataschema). It is safe for concurrent use.
type Decoder struct {
	reg    *eventmodels.Registry
	codecs *eventmodels.CodecSet
}

// NewDecoder returns a decoder over reg (nil: eventmodels.NewRegistry()) and
// codecs (nil: Avro and JSON over reg).
func NewDecoder(reg *eventmodels.Registry, codecs *eventmodels.CodecSet) (*Decoder, error) {
	if reg == nil {
		reg = eventmodels.NewRegistry()
	}
	if codecs == nil {
		c, err := schemas.NewCodecs(reg, 0)
		if err != nil {
			return nil, err
		}
		codecs = c
	}
	return &Decoder{reg: reg, codecs: codecs}, nil
}

// Registry returns the decoder's registry.
func (d *Decoder) Registry() *eventmodels.Registry { return d.reg }

// Decode returns the event in m. It reads ce_dataschema as the Bus writes
// it (DataSchemaURI) and also in the bare form "<schema>/v<version>".
// Failures (unknown content type, unknown
// event type, malformed or invalid body, headers that contradict the body)
// are errors marked Permanent: retrying cannot fix them.
func (d *Decoder) Decode(m *Message) (eventmodels.Event, error) {
	codec, err := d.codecs.For(m.Header(HeaderContentType))
	if err != nil {
		return nil, Permanent(err)
	}
	meta := eventmodels.Meta{EventType: m.Header(HeaderType)}
	if ds := m.Header(HeaderDataSchema); ds != "" {
		name, version, ok := schemas.ParseDataSchema(strings.TrimPrefix(ds, DataSchemaPrefix))
		if !ok {
			return nil, Permanent(fmt.Errorf("broker: bad %s header %q", HeaderDataSchema, ds))
		}
		if info, known := d.reg.Lookup(meta.EventType); known && info.Schema != "" && info.Schema != name {
			return nil, Permanent(fmt.Errorf("broker: %s %q does not carry event type %q", HeaderDataSchema, ds, meta.EventType))
		}
		meta.SchemaVersion = version
	}
	e, err := codec.Decode(m.Body, meta)
	if err != nil {
		return nil, Permanent(err)
	}
	if id := m.Header(HeaderID); id != "" && id != e.Envelope().EventID.String() {
		return nil, Permanent(fmt.Errorf("broker: header %s %s differs from event_id %s", HeaderID, id, e.Envelope().EventID))
	}
	return e, nil
}

// PublishedAt returns the ce_time header of m parsed, or false.
func PublishedAt(m *Message) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, m.Header(HeaderTime))
	return t, err == nil
}
