// Package broker is the contract every messaging backend of this module
// honours, and the typed layer on top of it.
//
// The untyped contract is small: a [Publisher] sends [Message]s and returns
// once the broker confirmed each one; a [Subscriber] delivers them to a
// [Handler], acknowledging a message only after its handler returned nil.
// Backends (broker/memory, kafkabus, rabbitbus) implement it; the exported
// conformance suite in broker/brokertest proves that they do.
//
// On top of it, [Bus] publishes typed events (eventmodels.Event): it routes
// each event to its topic, keys it for ordering, writes CloudEvents headers and
// W3C trace context, and encodes the body with the chosen codec.
// [HandleEvent] turns a typed function into a Handler.
//
// Delivery is at least once. Per-key order is kept, also with concurrency > 1.
// A failing handler is retried in place with exponential backoff (so order is
// kept), then the message goes to the dead-letter topic "<topic>.dlq" with the
// error recorded in headers, and consumption goes on. Middleware in this
// package (Retry, DeadLetter, Dedupe, Recover, Timeout, tracing, metrics)
// implements those policies once for every backend.
package broker
