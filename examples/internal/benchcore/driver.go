package benchcore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.opentelemetry.io/otel/propagation"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/otelevents"
)

// Modes: through the SDK or the raw client.
const (
	// ModeSDK publishes typed events through events.Bus (validation, Avro,
	// CloudEvents and trace headers, tracing and metrics hooks) and
	// consumes them through Bus.Subscribe (the backend's pipeline: retry,
	// dead letter, the same hooks) into an events.Router (decode once,
	// validate).
	ModeSDK = "sdk"
	// ModeRaw publishes the same bytes with the underlying client alone
	// (sarama, amqp091; for memory, broker.Message straight to the
	// broker) and consumes them with it, reading only two headers.
	ModeRaw = "raw"
	// ModeWatermill is the peer: the same events through watermill's
	// Pub/Subs (GoChannel, watermill-kafka, watermill-amqp), each event
	// validated and encoded with the SDK's Avro codec, its nine CloudEvents
	// headers as watermill metadata, consumed through a watermill Router
	// that decodes every event (see peer.go).
	ModeWatermill = "watermill"
)

// Modes lists every mode, in the order a comparison rotates them.
var Modes = []string{ModeSDK, ModeWatermill, ModeRaw}

// Backends.
const (
	BackendMemory   = "memory"
	BackendKafka    = "kafka"
	BackendRabbitMQ = "rabbitmq"
)

// Driver runs one backend in one mode for one run.
type Driver interface {
	// Start creates the run's topic and subscribes the consumer-group
	// members, handing every consumed message to c. It returns once they
	// consume, so that every event published afterwards reaches them.
	Start(ctx context.Context, c *Collector) error
	// Publish sends events first … first+n-1 in one call, with HeaderSent
	// set to sent, and returns once every one is confirmed (nil), or with
	// a *broker.PublishError naming the ones that are not, or another
	// error when none is known to be.
	Publish(ctx context.Context, first uint64, n int, sent string) error
	// Close stops the consumers (committing what they finished), closes the
	// clients and removes what Start created on a shared broker.
	Close() error
	// Workload returns the events the driver sends.
	Workload() *Workload
}

// Backlogger is a Driver whose start comes in two steps, so that a run can
// publish before anyone consumes (RunDrain): every driver of NewDriver is
// one. Start is Prepare then Subscribe.
type Backlogger interface {
	Driver
	// Prepare creates the run's topic and whatever keeps its events for
	// the consumer group (Kafka: the topic; RabbitMQ: the exchange and the
	// group's queue; memory: the topic), and connects the publishers. It
	// subscribes nothing.
	Prepare(ctx context.Context) error
	// Subscribe subscribes the consumer-group members after Prepare, as
	// Start does.
	Subscribe(ctx context.Context, c *Collector) error
}

// Options say what a driver runs. Zero fields mean their defaults.
type Options struct {
	// Backend is BackendMemory, BackendKafka or BackendRabbitMQ; Mode is
	// ModeSDK, ModeRaw or ModeWatermill.
	Backend, Mode string
	// Brokers are Kafka bootstrap addresses; URLs RabbitMQ URLs.
	Brokers []string
	URLs    []string
	// Topic names the run's topic (Kafka topic, RabbitMQ exchange, memory
	// topic); Group the consumer group.
	Topic, Group string
	// Partitions of the Kafka or memory topic; default 10.
	Partitions int
	// Subscribers is the number of consumer-group members (M); default 2.
	Subscribers int
	// Concurrency is the handler goroutines per member in SDK mode
	// (Subscription.Concurrency); default 4. Raw consumers use the
	// client's natural unit: a goroutine per claimed partition (sarama),
	// one per channel (amqp091).
	Concurrency int
	// MaxInFlight is the fetch window / prefetch per member; default 256.
	MaxInFlight int
	// QueueType is the RabbitMQ queue type; default quorum.
	QueueType string
	// TraceRatio is the fraction of publishes traced (SDK mode), with an
	// OpenTelemetry SDK tracer provider that records but exports nothing;
	// default 0.01, negative for none.
	TraceRatio float64
	// NoOTel runs the SDK arm without the OpenTelemetry hooks (tracing
	// and metrics), as the watermill arm runs without middleware; the send
	// time then travels through a PublishHook of its own. The peer
	// comparison sets it by default (eventbench -otel).
	NoOTel bool
	// Workload shapes the events.
	Workload WorkloadConfig
	// Backlog says that the run publishes before it subscribes (RunDrain):
	// a backend without retention of its own (watermill's GoChannel) must
	// then keep the events for the subscribers to come.
	Backlog bool
}

func (o Options) withDefaults() Options {
	if o.Partitions == 0 {
		o.Partitions = 10
	}
	if o.Subscribers == 0 {
		o.Subscribers = 2
	}
	if o.Concurrency == 0 {
		o.Concurrency = 4
	}
	if o.MaxInFlight == 0 {
		o.MaxInFlight = broker.DefaultMaxInFlight
	}
	if o.Group == "" {
		o.Group = "eventbench"
	}
	if o.TraceRatio == 0 {
		o.TraceRatio = 0.01
	}
	return o
}

// ErrOptions is matched by the errors of NewDriver for options it cannot
// run.
var ErrOptions = errors.New("benchcore: invalid options")

// Validate reports what is wrong with o (after defaults).
func (o Options) Validate() error {
	o = o.withDefaults()
	var errs []error
	switch o.Backend {
	case BackendMemory:
	case BackendKafka:
		if len(o.Brokers) == 0 {
			errs = append(errs, errors.New("kafka needs brokers"))
		}
	case BackendRabbitMQ:
		if len(o.URLs) == 0 {
			errs = append(errs, errors.New("rabbitmq needs URLs"))
		}
	default:
		errs = append(errs, fmt.Errorf("backend %q: want %s, %s or %s", o.Backend, BackendMemory, BackendKafka, BackendRabbitMQ))
	}
	if o.Mode != ModeSDK && o.Mode != ModeRaw && o.Mode != ModeWatermill {
		errs = append(errs, fmt.Errorf("mode %q: want %s, %s or %s", o.Mode, ModeSDK, ModeRaw, ModeWatermill))
	}
	if o.Topic == "" {
		errs = append(errs, errors.New("topic is required"))
	}
	if o.Partitions < 1 || o.Subscribers < 1 || o.Concurrency < 1 || o.MaxInFlight < 1 {
		errs = append(errs, errors.New("partitions, subscribers, concurrency and max in flight must be at least 1"))
	}
	if err := o.Workload.Validate(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrOptions, errors.Join(errs...))
	}
	return nil
}

// NewDriver returns the driver for o. Nothing is connected before Start.
func NewDriver(o Options, run RunID) (Driver, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	o = o.withDefaults()
	sdk, err := newSDK(o, run)
	if err != nil {
		return nil, err
	}
	if o.Mode == ModeWatermill {
		return newPeerDriver(o, sdk)
	}
	switch o.Backend {
	case BackendMemory:
		return newMemoryDriver(o, sdk), nil
	case BackendKafka:
		return newKafkaDriver(o, sdk), nil
	default:
		return newRabbitDriver(o, sdk), nil
	}
}

// sdkParts is what SDK mode adds to a backend: the typed Bus with
// OpenTelemetry tracing and metrics as its hooks (on SDK providers of the
// driver's own, recording, exporting nothing), publishing and subscribing.
type sdkParts struct {
	noOTel   bool
	run      RunID
	workload *Workload
	bus      *events.Bus // over a placeholder publisher until the backend exists
	metrics  *otelevents.Metrics
	tracing  *otelevents.Tracing
	tp       *sdktrace.TracerProvider
	mp       *sdkmetric.MeterProvider
	prop     propagation.TextMapPropagator
	raw      *peerCodec // the raw arms' own encode and decode (no Bus)
}

type sentKey struct{}

// sentPropagator writes HeaderSent from the publish ctx: the Bus injects
// its propagator into every message's headers, so the SDK path carries the
// send time without any change to the events.
type sentPropagator struct{}

func (sentPropagator) Inject(ctx context.Context, c propagation.TextMapCarrier) {
	if s, ok := ctx.Value(sentKey{}).(string); ok {
		c.Set(HeaderSent, s)
	}
}

func (sentPropagator) Extract(ctx context.Context, _ propagation.TextMapCarrier) context.Context {
	return ctx
}

func (sentPropagator) Fields() []string { return []string{HeaderSent} }

func newSDK(o Options, run RunID) (*sdkParts, error) {
	s := &sdkParts{run: run, noOTel: o.NoOTel}
	raw, err := newPeerCodec()
	if err != nil {
		return nil, err
	}
	s.raw = raw
	ratio := max(o.TraceRatio, 0)
	s.tp = sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))))
	s.mp = sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	w3c := propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})
	s.prop = propagation.NewCompositeTextMapPropagator(w3c, sentPropagator{})
	m, err := otelevents.NewMetrics(s.mp)
	if err != nil {
		return nil, err
	}
	s.metrics = m
	s.tracing = otelevents.NewTracing(otelevents.WithTracerProvider(s.tp), otelevents.WithPropagator(s.prop), otelevents.WithSystem(string(o.Backend)))
	s.bus, err = s.newBus(placeholder{}, o.Topic, eventmodels.NewRegistry())
	if err != nil {
		return nil, err
	}
	s.workload, err = NewWorkload(run, o.Workload, s.bus)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// newBus returns a Bus over pub routing every event to topic.
func (s *sdkParts) newBus(pub broker.Publisher, topic string, reg *eventmodels.Registry) (*events.Bus, error) {
	hooks := events.WithHooks(s.tracing, s.metrics)
	if s.noOTel {
		hooks = events.WithHooks(sentHook{})
	}
	return events.NewBus(pub,
		events.WithRegistry(reg),
		events.WithSource("eventbench"),
		events.WithRoute(func(eventmodels.TypeInfo, eventmodels.Event) string { return topic }),
		hooks)
}

// sentHook writes HeaderSent from the publish ctx when the OpenTelemetry
// hooks (whose propagator does it otherwise) are off.
type sentHook struct{}

func (sentHook) BeforePublish(ctx context.Context, msgs []*broker.Message) (context.Context, func(error)) {
	if sent, ok := ctx.Value(sentKey{}).(string); ok {
		for _, m := range msgs {
			m.SetHeader(HeaderSent, sent)
		}
	}
	return ctx, nil
}

// attach returns the bus over the backend's publisher.
func (s *sdkParts) attach(pub broker.Publisher, topic string) error {
	b, err := s.newBus(pub, topic, s.bus.Registry())
	if err != nil {
		return err
	}
	s.bus = b
	return nil
}

// publish builds events first … first+n-1 and publishes them through the
// bus.
func (s *sdkParts) publish(ctx context.Context, first uint64, n int, sent string) error {
	evs := make([]eventmodels.Event, n)
	for i := range evs {
		evs[i] = s.workload.Event(first + uint64(i))
	}
	return s.bus.Publish(context.WithValue(ctx, sentKey{}, sent), evs...)
}

// subscribe is the SDK consumer: the Bus decodes and validates every
// event, then the Router's handler accounts for it.
func (s *sdkParts) subscribe(ctx context.Context, sub broker.Subscription, c *Collector) (broker.Consumer, error) {
	r := events.NewRouter()
	events.OnEvent(r, func(ctx context.Context, e eventmodels.Event) error {
		sent := ""
		if m, ok := events.MessageFromContext(ctx); ok {
			sent = m.Header(HeaderSent)
		}
		c.ConsumedID(e.Envelope().EventID, sent)
		return nil
	})
	return s.bus.Subscribe(ctx, sub, r)
}

// rawHandler is the raw consumer on a broker.Message: it decodes the body
// with the Avro codec (no Bus, no validation beyond the decoder's) and
// accounts for the event by its decoded ID.
func rawHandler(p *peerCodec, c *Collector) broker.Handler {
	return func(_ context.Context, m *broker.Message) error {
		p.consumeRaw(c, m.Body, m.Header(broker.HeaderType), m.Header(broker.HeaderDataSchema), m.Header(HeaderSent))
		return nil
	}
}

// rawMessages encodes events first … first+n-1 for a raw publisher.
func (s *sdkParts) rawMessages(first uint64, n int, sent string) ([]*broker.Message, error) {
	msgs := make([]*broker.Message, n)
	for i := range msgs {
		m, err := s.raw.brokerMessage(s.workload, first+uint64(i), sent)
		if err != nil {
			return nil, err
		}
		msgs[i] = m
	}
	return msgs, nil
}

func (s *sdkParts) close() {
	_ = s.tp.Shutdown(context.Background())
	_ = s.mp.Shutdown(context.Background())
}

// placeholder is the publisher of the Bus that sizes the workload before
// any backend is connected; it publishes nothing.
type placeholder struct{}

func (placeholder) Publish(context.Context, ...*broker.Message) error { return broker.ErrClosed }
func (placeholder) Close() error                                      { return nil }

// SentNow returns the HeaderSent value for now.
func SentNow() string { return strconv.FormatInt(time.Now().UnixNano(), 10) }
