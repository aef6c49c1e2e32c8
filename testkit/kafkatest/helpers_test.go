package kafkatest_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// waitTimeout bounds every wait for an outcome in these tests.
const waitTimeout = 20 * time.Second

// saramaConfig is the client configuration the tests use: the idempotent
// producer settings of the platform, and short backoffs so that retries
// after faults do not dominate the run time.
func saramaConfig() *sarama.Config {
	cfg := sarama.NewConfig()
	cfg.Version = sarama.V3_6_0_0
	cfg.ClientID = "kafkatest-test"
	cfg.Producer.Idempotent = true
	cfg.Producer.RequiredAcks = sarama.WaitForAll
	cfg.Net.MaxOpenRequests = 1
	cfg.Producer.Retry.Max = 10
	cfg.Producer.Retry.Backoff = 50 * time.Millisecond
	cfg.Producer.Return.Successes = true
	cfg.Metadata.Retry.Backoff = 50 * time.Millisecond
	cfg.Consumer.Retry.Backoff = 50 * time.Millisecond
	cfg.Consumer.Offsets.Initial = sarama.OffsetOldest
	return cfg
}

func newProducer(t *testing.T, c *kafkatest.Cluster) sarama.SyncProducer {
	t.Helper()
	p, err := sarama.NewSyncProducer(c.Addrs(), saramaConfig())
	if err != nil {
		t.Fatalf("new producer: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func newClient(t *testing.T, c *kafkatest.Cluster) sarama.Client {
	t.Helper()
	cl, err := sarama.NewClient(c.Addrs(), saramaConfig())
	if err != nil {
		t.Fatalf("new client: %v", err)
	}
	t.Cleanup(func() { cl.Close() })
	return cl
}

// workload is keys concurrent senders, each sending the values 0, 1, 2, ...
// with its own key, one message at a time. Kafka must keep each key's
// values in order and exactly once.
type workload struct {
	topic string
	keys  int
	acked atomic.Int64
}

func key(k int) string { return "key-" + strconv.Itoa(k) }

// send sends values [from, to) for every key, the keys concurrently, and
// returns when all are acknowledged or one failed.
func (w *workload) send(p sarama.SyncProducer, from, to int) error {
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for k := range w.keys {
		wg.Go(func() {
			for i := from; i < to; i++ {
				msg := &sarama.ProducerMessage{
					Topic: w.topic,
					Key:   sarama.StringEncoder(key(k)),
					Value: sarama.StringEncoder(strconv.Itoa(i)),
				}
				if _, _, err := p.SendMessage(msg); err != nil {
					mu.Lock()
					errs = append(errs, fmt.Errorf("send %s=%d: %w", key(k), i, err))
					mu.Unlock()
					return
				}
				w.acked.Add(1)
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// collector consumes every partition of a topic from the oldest offset.
type collector struct {
	mu   sync.Mutex
	msgs map[int32][]*sarama.ConsumerMessage
	n    int
}

// collect starts consuming topic; consumers stop at test cleanup.
func collect(t *testing.T, c *kafkatest.Cluster, topic string) *collector {
	t.Helper()
	cons, err := sarama.NewConsumer(c.Addrs(), saramaConfig())
	if err != nil {
		t.Fatalf("new consumer: %v", err)
	}
	parts, err := cons.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	col := &collector{msgs: make(map[int32][]*sarama.ConsumerMessage)}
	var (
		wg  sync.WaitGroup
		pcs []sarama.PartitionConsumer
	)
	// Partition consumers must be closed before their consumer.
	t.Cleanup(func() {
		for _, pc := range pcs {
			pc.AsyncClose()
		}
		wg.Wait()
		cons.Close()
	})
	for _, p := range parts {
		pc, err := cons.ConsumePartition(topic, p, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("consume %s/%d: %v", topic, p, err)
		}
		pcs = append(pcs, pc)
		wg.Go(func() {
			for m := range pc.Messages() {
				col.mu.Lock()
				col.msgs[m.Partition] = append(col.msgs[m.Partition], m)
				col.n++
				col.mu.Unlock()
			}
		})
	}
	return col
}

func (col *collector) count() int {
	col.mu.Lock()
	defer col.mu.Unlock()
	return col.n
}

// waitFor polls cond until it holds, failing the test after waitTimeout.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", waitTimeout, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// logSize returns the number of records in topic: the sum of its
// partitions' high-water marks (nothing is ever deleted in these tests).
func logSize(t *testing.T, c *kafkatest.Cluster, topic string) int64 {
	t.Helper()
	cl := newClient(t, c)
	parts, err := cl.Partitions(topic)
	if err != nil {
		t.Fatalf("partitions of %s: %v", topic, err)
	}
	var n int64
	for _, p := range parts {
		hwm, err := cl.GetOffset(topic, p, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("high-water mark of %s/%d: %v", topic, p, err)
		}
		n += hwm
	}
	return n
}

// verifyLog checks that topic holds exactly w.keys*perKey records and that
// every key's values are 0..perKey-1, once each, in order, in one partition.
func verifyLog(t *testing.T, c *kafkatest.Cluster, w *workload, perKey int) {
	t.Helper()
	want := w.keys * perKey
	if n := logSize(t, c, w.topic); n != int64(want) {
		t.Errorf("log of %s holds %d records, want %d (duplicates or losses)", w.topic, n, want)
	}
	col := collect(t, c, w.topic)
	waitFor(t, fmt.Sprintf("%d records consumed", want), func() bool { return col.count() >= want })
	verifyOrder(t, col, w.keys, perKey)
}

// verifyOrder checks every key's values in the collector, in log order.
func verifyOrder(t *testing.T, col *collector, keys, perKey int) {
	t.Helper()
	col.mu.Lock()
	defer col.mu.Unlock()
	next := make(map[string]int)
	part := make(map[string]int32)
	for p, msgs := range col.msgs {
		for _, m := range msgs {
			k := string(m.Key)
			if q, ok := part[k]; ok && q != p {
				t.Errorf("%s in partitions %d and %d", k, q, p)
			}
			part[k] = p
			v, err := strconv.Atoi(string(m.Value))
			if err != nil {
				t.Fatalf("value %q at %d/%d: %v", m.Value, p, m.Offset, err)
			}
			if v != next[k] {
				t.Errorf("%s: got value %d at %d/%d, want %d (lost, duplicated or reordered)", k, v, p, m.Offset, next[k])
			}
			next[k] = v + 1
		}
	}
	for k := range keys {
		if next[key(k)] != perKey {
			t.Errorf("%s: consumed up to %d, want %d values", key(k), next[key(k)], perKey)
		}
	}
}

// timeoutCtx is a context bounded by waitTimeout.
func timeoutCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	t.Cleanup(cancel)
	return ctx
}
