// Package alertse2e holds the multi-process alert test of the health
// service (alerts_test.go): the reference programs run as separate
// processes on a standalone embedded Kafka (examples/devkafka) and a
// throwaway 3-node RabbitMQ cluster, one fault is injected at a time, and
// every alert must be raised exactly once and cleared exactly once after
// the fault ends, with no durable event lost. scripts/alerts-e2e.sh builds
// the programs, starts the cluster and runs it; without the script's
// environment the test skips.
package alertse2e
