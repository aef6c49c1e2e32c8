package events

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/schemas"
)

// Bus publishes typed events and subscribes typed handlers, over one
// backend (broker/memory, kafkabus, rabbitbus, or any broker.Publisher and
// broker.Subscriber). It owns the registry of event types and the codecs,
// so they are given in one place. It is safe for concurrent use.
//
// Publishing validates each event, routes it to its topic (from the
// registry), keys it with Key(), encodes the body — Avro for types with an
// Avro form, JSON otherwise — and writes the CloudEvents headers.
// Subscribing decodes each message once and calls the Router's handler for
// its event type.
type Bus struct {
	pub    broker.Publisher
	sub    broker.Subscriber
	reg    *eventmodels.Registry
	avro   eventmodels.InfoCodec
	json   eventmodels.InfoCodec
	forceJ bool
	source string
	route  func(info eventmodels.TypeInfo, e eventmodels.Event) string
	hooks  []any
	pubHks []PublishHook
	pubObs []broker.HookPublished
	subHks []broker.Hook
}

// Option configures a Bus.
type Option func(*busConfig)

type busConfig struct {
	reg     *eventmodels.Registry
	sub     broker.Subscriber
	cat     *schemas.Catalog
	json    bool
	source  string
	route   func(info eventmodels.TypeInfo, e eventmodels.Event) string
	maxSize int
	hooks   []any
}

// WithRegistry sets the registry of event types; default
// eventmodels.NewRegistry(), the built-in types. Types of your own are
// added to it (eventmodels.Register) before NewBus.
func WithRegistry(reg *eventmodels.Registry) Option { return func(c *busConfig) { c.reg = reg } }

// WithSubscriber sets what Subscribe uses, when the backend given to
// NewBus is not a broker.Subscriber itself (or is nil: a Bus that only
// subscribes).
func WithSubscriber(s broker.Subscriber) Option { return func(c *busConfig) { c.sub = s } }

// WithCatalog sets the catalog of Avro schemas; default schemas.Builtin().
func WithCatalog(cat *schemas.Catalog) Option { return func(c *busConfig) { c.cat = cat } }

// WithJSON makes the Bus publish every event as JSON, Avro forms or not
// (consumers read both whatever this option).
func WithJSON() Option { return func(c *busConfig) { c.json = true } }

// WithSource sets the ce_source header, the URI-reference naming the
// publishing service; default "cosmic-horizons".
func WithSource(source string) Option { return func(c *busConfig) { c.source = source } }

// WithRoute overrides the topic of each event (default: the registered
// topic), e.g. to send job status changes to a real-time exchange.
func WithRoute(route func(info eventmodels.TypeInfo, e eventmodels.Event) string) Option {
	return func(c *busConfig) { c.route = route }
}

// WithMaxEventSize bounds the bodies the Bus decodes (default
// eventmodels.DefaultMaxEventSize); larger ones fail with
// eventmodels.ErrTooLarge.
func WithMaxEventSize(n int) Option { return func(c *busConfig) { c.maxSize = n } }

// WithHooks adds hooks: PublishHooks and broker.HookPublished observers
// are told of every Publish, and broker hooks (broker.Hook: observers and
// wrappers, such as otelevents' tracing and metrics) are added to every
// subscription the Bus makes. A value may be several of these. NewBus
// refuses a value that is none.
func WithHooks(hooks ...any) Option {
	return func(c *busConfig) { c.hooks = append(c.hooks, hooks...) }
}

// PublishHook is told of each Bus.Publish: BeforePublish runs once the
// messages are built and before they are sent — it may start a span and
// write trace context into their headers — and the function it returns is
// called with Publish's outcome.
type PublishHook interface {
	BeforePublish(ctx context.Context, msgs []*broker.Message) (context.Context, func(err error))
}

// defaultSource is the ce_source of a Bus without WithSource.
const defaultSource = "cosmic-horizons"

// NewBus returns a Bus over backend: Publish sends through it (it must be
// a broker.Publisher to publish), and Subscribe consumes through it when
// it is a broker.Subscriber too (every backend of this module is both), or
// through WithSubscriber. It fails when a registered type's Avro form does
// not build (a payload field without its Go field, say) or a hook is
// neither a PublishHook nor a broker.Hook.
func NewBus(backend broker.Publisher, opts ...Option) (*Bus, error) {
	cfg := busConfig{source: defaultSource}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.reg == nil {
		cfg.reg = eventmodels.NewRegistry()
	}
	b := &Bus{pub: backend, sub: cfg.sub, reg: cfg.reg, forceJ: cfg.json, source: cfg.source, route: cfg.route, hooks: cfg.hooks}
	if b.sub == nil {
		if s, ok := backend.(broker.Subscriber); ok {
			b.sub = s
		}
	}
	copts := []schemas.CodecOption{}
	if cfg.cat != nil {
		copts = append(copts, schemas.WithCatalog(cfg.cat))
	}
	if cfg.maxSize > 0 {
		copts = append(copts, schemas.WithMaxEventSize(cfg.maxSize))
	}
	avroCodec, err := schemas.NewAvroCodec(b.reg, copts...)
	if err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	b.avro = avroCodec
	b.json = eventmodels.NewJSONCodec(b.reg, cfg.maxSize)
	if b.route == nil {
		b.route = func(info eventmodels.TypeInfo, _ eventmodels.Event) string { return info.Topic }
	}
	var errs []error
	for i, h := range cfg.hooks {
		ph, isPub := h.(PublishHook)
		if isPub {
			b.pubHks = append(b.pubHks, ph)
		}
		isSub := h != nil && broker.IsHook(h)
		if isSub {
			b.subHks = append(b.subHks, h)
		}
		if o, ok := h.(broker.HookPublished); ok {
			b.pubObs = append(b.pubObs, o)
		}
		if !isPub && !isSub {
			errs = append(errs, fmt.Errorf("hook %d (%T) is neither an events.PublishHook nor a broker.Hook: it would do nothing", i, h))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("events: %w", err)
	}
	return b, nil
}

// Registry returns the bus's registry.
func (b *Bus) Registry() *eventmodels.Registry { return b.reg }

// codecFor returns the codec that encodes info's events.
func (b *Bus) codecFor(info eventmodels.TypeInfo) eventmodels.InfoCodec {
	if info.HasAvro() && !b.forceJ {
		return b.avro
	}
	return b.json
}

// Publish validates, encodes and publishes events, and returns when the
// backend confirmed every one (see broker.Publisher.Publish). If any event
// is invalid or cannot be encoded, nothing is published and the error
// matches broker.ErrInvalidMessage (and wraps the
// *eventmodels.ValidationError).
func (b *Bus) Publish(ctx context.Context, events ...eventmodels.Event) (err error) {
	if len(events) == 0 {
		return nil
	}
	msgs, err := b.messages(events)
	if err != nil {
		return err
	}
	ctx, complete := b.startPublish(ctx, msgs)
	err = b.pub.Publish(ctx, msgs...)
	if complete != nil {
		complete(err)
	}
	return err
}

// startPublish runs the PublishHooks' BeforePublish for msgs and returns
// the ctx to publish with and the function to call once with the outcome
// (the HookPublished observers, then the hooks' ends in reverse order), or
// nil when the Bus has no publish hooks.
func (b *Bus) startPublish(ctx context.Context, msgs []*broker.Message) (context.Context, func(error)) {
	if len(b.pubHks) == 0 && len(b.pubObs) == 0 {
		return ctx, nil
	}
	var ends []func(error)
	for _, h := range b.pubHks {
		var end func(error)
		ctx, end = h.BeforePublish(ctx, msgs)
		if end != nil {
			ends = append(ends, end)
		}
	}
	start := time.Now()
	return ctx, func(err error) {
		for _, o := range b.pubObs {
			o.OnPublished(ctx, msgs, time.Since(start), err)
		}
		for i := len(ends) - 1; i >= 0; i-- {
			ends[i](err)
		}
	}
}

// messages returns the messages of events, or the first event's error.
func (b *Bus) messages(events []eventmodels.Event) ([]*broker.Message, error) {
	if b.pub == nil {
		return nil, errors.New("events: this Bus has no publisher")
	}
	msgs := make([]*broker.Message, len(events))
	for i, e := range events {
		m, err := b.Message(e)
		if err != nil {
			return nil, err
		}
		msgs[i] = m
	}
	return msgs, nil
}

// PublishAsync is Publish without the wait: it validates and encodes
// events, hands them to the backend and returns; done is called exactly
// once, later, with what Publish would have returned (nil when the backend
// confirmed every event; else a *broker.PublishError naming each failed
// one, or ctx's error when ctx ended first). It is the way for one caller to
// keep many events in flight: a loop of PublishAsync calls does not wait a
// round trip per event, and each completion says which events are safe.
//
// When PublishAsync returns an error, done is never called: an invalid
// event (matching broker.ErrInvalidMessage; nothing was sent),
// broker.ErrClosed, or ctx's error during the hand-off (part of the events
// may have been handed over: publish them again). Events with equal keys
// keep their order within a call, and across calls made one after another
// on backends whose hand-off is ordered (memory and kafkabus; rabbitbus
// sends each call independently, like concurrent Publish calls).
// PublishAsync blocks while the backend's buffers are full, bounded by ctx.
// done may run on any goroutine, possibly before PublishAsync returns, and
// must not block. Publish hooks see the call; its duration ends at done.
// On a backend that is not a broker.AsyncPublisher, PublishAsync publishes
// synchronously and then calls done.
func (b *Bus) PublishAsync(ctx context.Context, done func(error), events ...eventmodels.Event) error {
	if done == nil {
		return fmt.Errorf("%w: PublishAsync needs a done func", broker.ErrInvalidMessage)
	}
	if len(events) == 0 {
		done(nil)
		return nil
	}
	msgs, err := b.messages(events)
	if err != nil {
		return err
	}
	ctx, complete := b.startPublish(ctx, msgs)
	if complete == nil {
		complete = func(error) {}
	}
	finish := func(err error) { complete(err); done(err) }
	ap, ok := b.pub.(broker.AsyncPublisher)
	if !ok {
		err := b.pub.Publish(ctx, msgs...)
		var pe *broker.PublishError
		if err != nil && !errors.As(err, &pe) {
			complete(err)
			return err
		}
		finish(err)
		return nil
	}
	if err := ap.PublishAsync(ctx, finish, msgs...); err != nil {
		complete(err)
		return err
	}
	return nil
}

// ceTime is the layout of ce_time: RFC 3339 with milliseconds, UTC.
const ceTime = "2006-01-02T15:04:05.000Z07:00"

// Message returns the message Publish sends for e (before the publish
// hooks add trace context).
func (b *Bus) Message(e eventmodels.Event) (*broker.Message, error) {
	if e == nil {
		return nil, fmt.Errorf("%w: nil event", broker.ErrInvalidMessage)
	}
	info, err := b.reg.InfoOf(e)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", broker.ErrInvalidMessage, err)
	}
	if err := e.Validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", broker.ErrInvalidMessage, err)
	}
	codec := b.codecFor(info)
	body, err := codec.EncodeInfo(info, e)
	if err != nil {
		return nil, fmt.Errorf("%w: encode %s: %w", broker.ErrInvalidMessage, info.EventType, err)
	}
	env := e.Envelope()
	key := e.Key()
	h := make(broker.Headers, 0, 12)
	h = append(h,
		broker.Header{Key: broker.HeaderSpecVersion, Value: broker.SpecVersion},
		broker.Header{Key: broker.HeaderID, Value: env.EventID.String()},
		broker.Header{Key: broker.HeaderType, Value: env.EventType},
		broker.Header{Key: broker.HeaderSource, Value: b.source},
		broker.Header{Key: broker.HeaderTime, Value: env.Timestamp.UTC().Format(ceTime)},
		broker.Header{Key: broker.HeaderCorrelationID, Value: env.CorrelationID.String()},
		broker.Header{Key: broker.HeaderContentType, Value: codec.ContentType()},
	)
	if key != "" {
		h = append(h, broker.Header{Key: broker.HeaderSubject, Value: key})
	}
	if ds := codec.DataSchemaOf(info); ds != "" {
		h = append(h, broker.Header{Key: broker.HeaderDataSchema, Value: DataSchemaURI(ds)})
	}
	return &broker.Message{Topic: b.route(info, e), Key: key, Headers: h, Body: body}, nil
}

// DataSchemaPrefix makes a schema name and version ("job-metrics/v2", as
// a codec's DataSchema returns it) into the absolute URI that CloudEvents
// requires of dataschema: "urn:cosmic-horizons:schema:job-metrics/v2".
const DataSchemaPrefix = "urn:cosmic-horizons:schema:"

// DataSchemaURI returns the ce_dataschema value of a schema name and
// version such as "job-metrics/v2": DataSchemaPrefix + ds.
func DataSchemaURI(ds string) string { return DataSchemaPrefix + ds }

// Decode returns the event in m. It requires the attributes CloudEvents 1.0
// requires (ce_specversion "1.0", ce_id, ce_source, ce_type: see
// CheckCloudEvent) and reads the content-type header (or, without it,
// ce_datacontenttype; neither means Avro), ce_type and ce_dataschema (as
// the Bus writes it, DataSchemaURI, or bare, "<schema>/v<version>"). IDs in
// headers are compared with the body's as UUIDs, case-insensitively.
// Failures (headers that are not a CloudEvent, unknown content type,
// unknown event type, malformed or invalid body, headers that contradict
// the body) are errors marked broker.Permanent: retrying cannot fix them.
func (b *Bus) Decode(m *broker.Message) (eventmodels.Event, error) {
	if err := CheckCloudEvent(m); err != nil {
		return nil, broker.Permanent(err)
	}
	typ := m.Header(broker.HeaderType)
	info, ok := b.reg.Lookup(typ)
	if !ok {
		return nil, broker.Permanent(fmt.Errorf("%w: %q", eventmodels.ErrUnknownEventType, typ))
	}
	return b.decode(m, info)
}

// decode decodes m, of the registered type info; m passed CheckCloudEvent.
func (b *Bus) decode(m *broker.Message, info eventmodels.TypeInfo) (eventmodels.Event, error) {
	ct, err := contentType(m)
	if err != nil {
		return nil, broker.Permanent(err)
	}
	codec, err := b.codecOf(ct)
	if err != nil {
		return nil, broker.Permanent(err)
	}
	version := 0
	if ds := m.Header(broker.HeaderDataSchema); ds != "" {
		name, v, ok := schemas.ParseDataSchema(strings.TrimPrefix(ds, DataSchemaPrefix))
		if !ok {
			return nil, broker.Permanent(fmt.Errorf("events: bad %s header %q", broker.HeaderDataSchema, ds))
		}
		if schemaName(info) != name {
			return nil, broker.Permanent(fmt.Errorf("events: %s %q does not carry event type %q", broker.HeaderDataSchema, ds, info.EventType))
		}
		version = v
	}
	e, err := codec.DecodeInfo(info, m.Body, version)
	if err != nil {
		if ct == "" {
			err = fmt.Errorf("events: the message has neither a %s nor a %s header, so its body was read as %s (the default): %w",
				broker.HeaderContentType, broker.HeaderDataContentType, eventmodels.ContentTypeAvro, err)
		}
		return nil, broker.Permanent(err)
	}
	if err := checkIDs(m, e); err != nil {
		return nil, err
	}
	return e, nil
}

// schemaName is the schema name ce_dataschema carries for info's events.
func schemaName(info eventmodels.TypeInfo) string {
	if info.Schema != "" {
		return info.Schema
	}
	return info.EventType
}

// checkIDs refuses headers whose IDs differ from the body's, comparing
// them as UUIDs: ce_id with event_id, and ce_correlationid (optional) with
// correlation_id.
func checkIDs(m *broker.Message, e eventmodels.Event) error {
	env := e.Envelope()
	if id := m.Header(broker.HeaderID); !sameID(id, env.EventID) {
		return broker.Permanent(fmt.Errorf("events: header %s %s differs from event_id %s", broker.HeaderID, id, env.EventID))
	}
	if id, ok := m.Headers.Lookup(broker.HeaderCorrelationID); ok && !sameID(id, env.CorrelationID) {
		return broker.Permanent(fmt.Errorf("events: header %s %s differs from correlation_id %s", broker.HeaderCorrelationID, id, env.CorrelationID))
	}
	return nil
}

// codecOf returns the codec of a content type (parameters ignored; empty
// means Avro).
func (b *Bus) codecOf(contentType string) (eventmodels.InfoCodec, error) {
	switch mediaType(contentType) {
	case eventmodels.ContentTypeAvro, "":
		return b.avro, nil
	case eventmodels.ContentTypeJSON:
		return b.json, nil
	}
	return nil, fmt.Errorf("%w %q", eventmodels.ErrUnsupportedContentType, contentType)
}

// PublishedAt returns the ce_time header of m parsed, or false.
func PublishedAt(m *broker.Message) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, m.Header(broker.HeaderTime))
	return t, err == nil
}
