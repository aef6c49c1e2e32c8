// Package kafkabus is the Kafka backend of the broker contract, on
// IBM/sarama: a [Backend] is a broker.Publisher and broker.Subscriber for
// one cluster, with topic provisioning ([Admin.EnsureTopics]) and a health
// check ([Backend.Health]) that reports brokers, controller, topics and
// consumer group lag.
//
// Contract, as this backend meets it:
//
//   - Publish returns once every message is acknowledged by all in-sync
//     replicas: sarama's idempotent producer, acks=all, one request in
//     flight per broker, so retries after leader moves, timeouts and broken
//     connections neither lose, duplicate nor reorder messages. Keys are
//     partitioned with murmur2, as the Java client does, so Go and JVM
//     producers put a key on the same partition. Concurrent calls share the
//     producer's batches: throughput comes from concurrency.
//   - A durable subscription is one member of the consumer group
//     Subscription.Group. Each partition is handled in order; with
//     Concurrency > 1 its messages are spread over workers by key. The
//     offset committed is the lowest not yet finished, so a crash or a
//     rebalance redelivers only unfinished or uncommitted work
//     (at-least-once). When partitions are revoked or the subscription
//     stops, nothing more is handed out, in-flight handlers get
//     DrainTimeout to finish, then their ctx is cancelled, and what
//     finished is committed.
//   - Handlers run inside broker.Pipeline: retries in place, then the dead
//     letter "<topic>.dlq" (published through the same producer), or a stop
//     with *broker.HandlerError under OnFailureStop.
//   - An ephemeral subscription reads every partition from its end and
//     commits nothing.
//
// Configuration is a [Config], written in code or read by [ConfigFromEnv];
// New, like every backend's constructor, takes a ctx and the Config and
// reports every problem of the Config at once:
//
//	cfg, err := kafkabus.ConfigFromEnv() // KAFKA_BROKERS=k1:9092,k2:9092,...
//	if err != nil {
//		return err // names every variable that does not parse
//	}
//	cfg.Logger = logger
//	b, err := kafkabus.New(ctx, cfg)
//	if err != nil {
//		return err
//	}
//	defer b.Close()
//	if _, err := b.Admin().EnsureTopics(ctx, events.PlatformTopics(), kafkabus.WithDeadLetterTopics()); err != nil {
//		return err // a *kafkabus.DriftError lists topics that differ from the catalogue
//	}
//	bus, err := events.NewBus(b, events.WithSource("orchestrator"))
//	...
//	err = bus.Publish(ctx, eventmodels.NewJobSubmitted(...))
//	r := events.NewRouter()
//	events.On(r, func(ctx context.Context, e *eventmodels.JobCompleted) error { ... })
//	c, err := bus.Subscribe(ctx, broker.Subscription{Group: "metrics", Concurrency: 8}, r)
//
// docs/operations.md ("Kafka") covers provisioning, rebalances, delivery
// guarantees, lag and the dead-letter path for operators.
package kafkabus
