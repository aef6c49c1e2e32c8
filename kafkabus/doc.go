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
// Configuration is a [Config] (from code or [ConfigFromEnv]) passed with
// [WithConfig], adjusted by options:
//
//	cfg := kafkabus.ConfigFromEnv() // KAFKA_BROKERS=k1:9092,k2:9092,...
//	b, err := kafkabus.New(kafkabus.WithConfig(cfg), kafkabus.Logger(logger))
//	if err != nil {
//		return err
//	}
//	defer b.Close()
//	if _, err := b.Admin().EnsureTopics(ctx, broker.PlatformTopics(), kafkabus.WithDeadLetterTopics()); err != nil {
//		return err // a *kafkabus.DriftError lists topics that differ from the catalogue
//	}
//	bus, _ := broker.NewBus(b, broker.WithSource("orchestrator"))
//	_ = bus.Publish(ctx, eventmodels.NewJobSubmitted(...))
//	c, err := b.Subscribe(ctx, broker.Subscription{Topic: "job-lifecycle", Group: "metrics", Concurrency: 8},
//		broker.HandleEvent(dec, func(ctx context.Context, e *eventmodels.JobCompleted) error { ... }))
//
// docs/operations.md ("Kafka") covers provisioning, rebalances, delivery
// guarantees, lag and the dead-letter path for operators.
package kafkabus
