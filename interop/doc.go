// Package interop holds the cross-language test of the wire format: a
// producer and a consumer written in Node (interop/node/interop.js, on avsc,
// kafkajs, amqplib and the CloudEvents JS SDK, reading only schemas/*.avsc
// and schemas/catalog.json) exchange every event type with the SDK, in both
// directions, on the embedded Kafka and the local RabbitMQ, in Avro and
// JSON, plus the malformed messages the SDK must accept or refuse. The
// package has no code of its own: see interop_test.go and
// docs/foreign-producers.md.
//
// Run it with the Node dependencies installed:
//
//	(cd interop/node && npm ci) && go test ./interop
//
// Outside CI it skips when node or interop/node/node_modules is missing; in
// CI (CI=true) it fails.
package interop
