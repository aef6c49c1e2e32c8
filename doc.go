// Package events publishes and consumes the typed, schema-checked events of
// the Cosmic Horizons platform (package eventmodels) over any backend of the
// broker contract: the embedded broker/memory, Kafka (kafkabus) or
// RabbitMQ (rabbitbus).
//
// A [Bus] is the typed client. It owns the registry of event types and the
// codecs, so they are given once:
//
//	bus, err := events.NewBus(backend)                     // built-in types
//	err = bus.Publish(ctx, eventmodels.NewJobCompleted(…)) // validated, routed, encoded, confirmed
//
//	r := events.NewRouter()
//	events.On(r, func(ctx context.Context, e *eventmodels.JobCompleted) error { … })
//	consumer, err := bus.Subscribe(ctx, broker.Subscription{Group: "billing"}, r)
//
// Publish validates each event, routes it to its registered topic, keys it
// for per-job order, encodes it (Avro for types with an Avro form, JSON
// otherwise) and writes CloudEvents headers. Subscribe mirrors it: a
// [Router] calls the handler of each message's event type, decoding the
// body once; a type nobody registered is dead-lettered, a known type
// without a handler is skipped and counted.
//
// Types of your own are registered in one step (eventmodels.Register), and
// travel as JSON unless you give them an Avro payload record
// (eventmodels.AvroPayload); the envelope is added by the codec.
// Instrumentation comes as hooks ([WithHooks]): otelevents has
// OpenTelemetry tracing and metrics.
package events
