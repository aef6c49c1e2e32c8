package kafkabus_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/kafkabus"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// waitTimeout bounds every wait for an outcome in these tests.
const waitTimeout = 60 * time.Second

// testConfig is the configuration the tests use: short group timeouts, so
// that rebalances take about a second, and short backoffs, so that retries
// after faults do not dominate the run time.
func testConfig(c *kafkatest.Cluster) kafkabus.Config {
	return kafkabus.Config{
		Brokers:           c.Addrs(),
		ClientID:          "kafkabus-test",
		SessionTimeout:    6 * time.Second,
		HeartbeatInterval: 500 * time.Millisecond,
		RebalanceTimeout:  5 * time.Second,
		RetryBackoff:      50 * time.Millisecond,
		Logger:            testLogger(),
	}
}

// testLogger logs to stderr when KAFKABUS_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("KAFKABUS_TEST_LOG") == "" {
		return nil
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// newBackend returns a backend on c with testConfig, closed at the end of
// the test.
func newBackend(t testing.TB, c *kafkatest.Cluster) *kafkabus.Backend {
	t.Helper()
	return openBackend(t, testConfig(c))
}

// openBackend returns a backend with cfg, closed at the end of the test.
func openBackend(t testing.TB, cfg kafkabus.Config) *kafkabus.Backend {
	t.Helper()
	b, err := kafkabus.New(context.Background(), cfg)
	if err != nil {
		t.Fatalf("kafkabus.New: %v", err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

var topicSeq atomic.Int64

// newTopic creates a fresh topic (and its dead-letter topic) on c.
func newTopic(t testing.TB, b *kafkabus.Backend, prefix string, partitions int32) string {
	t.Helper()
	name := fmt.Sprintf("%s-%d-%d", prefix, time.Now().UnixNano()%1e6, topicSeq.Add(1))
	ensure(t, b, name, partitions)
	ensure(t, b, broker.DeadLetterTopic(name), 1)
	return name
}

func ensure(t testing.TB, b *kafkabus.Backend, name string, partitions int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	if _, err := b.Admin().EnsureTopics(ctx, []broker.TopicSpec{{Name: name, Partitions: partitions, ReplicationFactor: 3}}); err != nil {
		t.Fatalf("EnsureTopics(%s): %v", name, err)
	}
}

// rawConfig is a plain sarama configuration for reading and writing
// around kafkabus in tests.
func rawConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.Producer.Return.Successes = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	return cfg
}

// readAll reads every message of topic from the start up to the current
// high-water marks with a plain sarama consumer.
func readAll(t testing.TB, c *kafkatest.Cluster, topic string) []*sarama.ConsumerMessage {
	t.Helper()
	client, err := sarama.NewClient(c.Addrs(), rawConfig())
	if err != nil {
		t.Fatalf("raw client: %v", err)
	}
	defer client.Close()
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatalf("raw consumer: %v", err)
	}
	defer consumer.Close()
	parts, err := client.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions: %v", err)
	}
	var out []*sarama.ConsumerMessage
	for _, p := range parts {
		end, err := client.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("high-water mark: %v", err)
		}
		start, err := client.GetOffset(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("log start: %v", err)
		}
		if end == start {
			continue
		}
		pc, err := consumer.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("consume %d: %v", p, err)
		}
		deadline := time.After(waitTimeout)
		for done := false; !done; {
			select {
			case m := <-pc.Messages():
				out = append(out, m)
				done = m.Offset >= end-1
			case <-deadline:
				t.Fatalf("reading %s/%d: timed out at %d of %d", topic, p, len(out), end)
			}
		}
		pc.Close()
	}
	return out
}

// TestMain lets the test binary serve a Kafka cluster as a child process
// (kafkatest.StartProcess), for benchmarks that measure the client alone.
func TestMain(m *testing.M) {
	kafkatest.ServeIfChild()
	os.Exit(m.Run())
}
