// Package rabbitbus is the RabbitMQ backend of the broker contract, on
// github.com/rabbitmq/amqp091-go: a [Publisher] with publisher confirms, a
// [Subscriber] with manual acknowledgements, and a [Backend] that is both.
//
// # Connections
//
// Config.URLs lists the cluster's nodes. The constructors connect to the
// first one that answers, trying each once and failing fast (a
// [*ConnectError], matching [ErrAccessRefused] for bad credentials). After
// that a lost connection — noticed at once on a reset, within about three
// heartbeats (Config.Heartbeat, 2s) on a silent network — is replaced by
// one to the next node, with backoff, forever, until Close. Publishing and
// consuming use separate connections. State changes go to the Logger and to
// [HookConnection] hooks; Health reports the node and the reconnect count.
//
// # Publishing
//
// A topic is a durable topic exchange, declared on first use; the routing
// key is the event type (the ce_type header). Messages are persistent and
// mandatory, published on a pool of confirm-mode channels; Publish returns
// when the broker confirmed each of them. A message no queue takes fails
// with broker.ErrUnroutable; a nacked message is sent again for a while
// (Config.NackRetry: quorum queues nack while they elect a leader), then
// fails with [ErrNacked]; a message whose connection was lost before its
// confirm is sent again after the reconnect (at least once: the broker may hold two copies, and a rabbitbus
// consumer reports the second as Redelivered). During an outage Publish
// waits for a connection, bounded by its ctx. Confirms are tracked
// asynchronously per channel, so concurrent callers share the round trips.
//
// # Wire format
//
// CloudEvents headers ("ce_<attr>") travel as "cloudEvents_<attr>" in the
// AMQP headers table, content-type as the ContentType property, the key in
// [HeaderKey]; MessageId, CorrelationId, Type and Timestamp (whole seconds)
// are set from ce_id, ce_correlationid, ce_type and ce_time. Consumers map
// everything back, exactly.
//
// # Topology
//
// For topic T and durable group G: queue "T.G" (Config.QueueName; a quorum
// queue by default) bound to T by the subscription's EventTypes, with
// x-dead-letter-exchange "T.dlq" and its own dead-letter queue "T.G.dlq".
// Ephemeral subscriptions get an exclusive auto-delete queue. See
// topology.go and docs/operations.md for the full picture, including why
// each topic has an alternate exchange "T.unmatched".
//
// # Consuming
//
// Prefetch is Subscription.MaxInFlight; handlers run in
// Subscription.Concurrency workers sharded by key (order per key kept,
// acknowledgements per message). Every handler runs inside broker.Pipeline:
// retries in place, then the dead letter, published to "T.dlq" (where
// subscribers of the dead-letter topic see it) and copied to the group's
// "T.G.dlq" queue. After a reconnect a subscription declares its topology
// again and resumes by itself; the broker redelivers what was not
// acknowledged. Stopping cancels the consumer, drains the handlers, acks,
// gives back the rest in order and closes the channel before the
// connection, so no acknowledged message comes back.
//
// # Groups
//
// The members of a group are competing consumers on one queue: RabbitMQ
// does not tie a key to a member, so per-key order across members needs a
// single member (with Concurrency > 1) or Config.SingleActiveConsumer. A
// queue exists from the group's first Subscribe (or DeclareGroup) on:
// messages published before that were unroutable, not kept.
package rabbitbus
