// Package memory is the embedded, in-process backend of the broker
// contract: the SDK's default, and the backend unit tests run against.
//
// A [Backend] keeps topics as partitioned, append-only logs in memory, with
// the semantics of a real log broker: a non-empty key always lands on the
// same partition, so one key keeps its order; consumer groups each receive
// every message, and the members of one group share the partitions (they are
// rebalanced when a member joins or leaves); a message is committed only
// after its handler returned nil, the committed offset never passes an
// unfinished message, and a group that subscribes again resumes right after
// its last committed message (at-least-once). Handlers run inside
// [broker.Pipeline], so retries, dead letters to "<topic>.dlq", failure
// policies, handler timeouts and panic recovery behave exactly as on the
// Kafka and RabbitMQ backends.
//
// Each partition buffers a bounded number of messages (see [Config].BufferSize).
// While a durable group reads a topic, a message is trimmed as soon as every
// group registered on it (durable groups, and ephemeral subscriptions while
// they run) has committed it, so a group that joins later with
// broker.StartOldest starts at the oldest message some group still needs. A
// partition no durable group reads keeps its newest messages, for groups
// that subscribe later. A partition full of messages some group still needs
// applies backpressure: Publish blocks until a consumer frees room (or fails
// fast with [ErrBufferFull], see [Config].FailWhenFull). A durable group stays
// registered when its last member leaves, so a group that is never
// resubscribed eventually holds its topic's publishers up, as an
// unconsumed Kafka group would hold its lag. Nothing is persisted:
// everything is lost when the process exits.
//
// The broker is fast enough never to be the bottleneck of a service:
// consumers take every available message of a partition in one lock, are
// woken without timers or polling, and with Concurrency 1 call the handler
// inline.
package memory
