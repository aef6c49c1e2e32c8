// Command evctl is the operator's tool for the event platform's brokers,
// Kafka and RabbitMQ alike: it lists, shows and redrives dead letters,
// tails topics without joining a consumer group, and provisions the
// platform topics while reporting drift and consumer lag.
//
//	evctl dlq list     [flags]   dead-letter topics/queues: counts, oldest, newest, by error
//	evctl dlq show     [flags]   dead letters decoded to JSON, with their x-dlq-* headers
//	evctl dlq redrive  [flags]   put dead letters back where they failed (at-least-once)
//	evctl tail TOPIC   [flags]   follow a topic, decoded, as no consumer group
//	evctl topics       [flags]   ensure the platform topics, report drift and lag
//
// The broker is chosen with --broker kafka|rabbitmq, or from which of
// KAFKA_BROKERS and AMQP_URLS/AMQP_URL is set; the rest of the
// configuration comes from the same environment variables as kafkabus and
// rabbitbus (kafkabus.ConfigFromEnv, rabbitbus.ConfigFromEnv), and
// --brokers / --url override the addresses. Output is a table, or JSON with
// --json. Exit status: 0 success, 1 failure, 2 bad usage, 3 topic drift.
//
// See "Operating dead letters with evctl" in docs/operations.md.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
