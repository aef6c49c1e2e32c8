// Package broker is the contract every messaging backend of this module
// honours, on the standard library alone, so that a backend (ours or a
// third party's) depends on nothing else.
//
// A [Publisher] sends [Message]s and returns once the broker confirmed each
// one; a [Subscriber] delivers them to a [Handler], acknowledging a message
// only after its handler returned nil, and returns a [Consumer]. Backends
// (broker/memory, kafkabus, rabbitbus) implement it on one consumer runtime,
// broker/dispatch; the exported conformance suite in broker/brokertest
// proves that they do.
//
// Delivery is at least once. Per-key order is kept, also with concurrency >
// 1. A failing handler is retried in place with exponential backoff (so
// order is kept), then the message goes to the dead-letter topic
// "<topic>.dlq" with the error recorded in headers, and consumption goes on
// ([Subscription], [FailurePolicy], [DeadLetterFallback]). The [Pipeline]
// implements those policies once for every backend, with the middleware of
// this package ([Retry], [DeadLetter], [Dedupe], [Recover], [Timeout]).
//
// Code extends publishing and consumption through hooks ([Hook]): observers
// that are told what happened (metrics, logs: [LoggingHook]) and wrappers
// that change it (a [Middleware] around each message, an
// [AttemptMiddleware] around each attempt). The OpenTelemetry tracing and
// metrics hooks live in package otelevents; the typed layer (events
// published and handled as eventmodels types) in the module's root package
// events.
package broker
