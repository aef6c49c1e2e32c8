package kafkatest_test

import (
	"errors"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// member is a consumer group member recording what Setup handed it and
// which partitions it received messages from.
type member struct {
	mu       sync.Mutex
	gen      int32
	claims   []int32
	received map[int32]int
}

func (m *member) Setup(s sarama.ConsumerGroupSession) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.gen = s.GenerationID()
	m.claims = slices.Sorted(slices.Values(s.Claims()["events"]))
	return nil
}

func (m *member) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (m *member) ConsumeClaim(s sarama.ConsumerGroupSession, c sarama.ConsumerGroupClaim) error {
	for msg := range c.Messages() {
		m.mu.Lock()
		m.received[msg.Partition]++
		m.mu.Unlock()
		s.MarkMessage(msg, "")
	}
	return nil
}

func (m *member) state() (int32, []int32) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gen, m.claims
}

// join runs a group member until the test ends.
func join(t *testing.T, c *kafkatest.Cluster) *member {
	t.Helper()
	cfg := saramaConfig()
	cfg.Consumer.Group.Session.Timeout = 2 * time.Second // below kfake's own 6s minimum
	cfg.Consumer.Group.Heartbeat.Interval = 200 * time.Millisecond
	cfg.Consumer.Group.Rebalance.Timeout = 5 * time.Second
	g, err := sarama.NewConsumerGroup(c.Addrs(), "splitters", cfg)
	if err != nil {
		t.Fatalf("new consumer group: %v", err)
	}
	m := &member{received: make(map[int32]int)}
	ctx := t.Context()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			if err := g.Consume(ctx, []string{"events"}, m); err != nil && ctx.Err() == nil {
				t.Errorf("consume: %v", err)
				return
			}
		}
	}()
	t.Cleanup(func() {
		<-done
		g.Close()
	})
	return m
}

// TestConsumerGroupSplitsPartitions proves that two sarama group members
// share a 6-partition topic 3 and 3, and that each then receives the
// messages of exactly its own partitions.
func TestConsumerGroupSplitsPartitions(t *testing.T) {
	c := kafkatest.NewCluster(t, kafkatest.Topic("events", 6, nil))
	all := []int32{0, 1, 2, 3, 4, 5}

	a := join(t, c)
	waitFor(t, "first member to own all 6 partitions", func() bool {
		_, claims := a.state()
		return slices.Equal(claims, all)
	})

	b := join(t, c)
	waitFor(t, "the two members to split the partitions 3 and 3", func() bool {
		genA, ca := a.state()
		genB, cb := b.state()
		union := slices.Sorted(slices.Values(append(slices.Clone(ca), cb...)))
		return genA == genB && len(ca) == 3 && len(cb) == 3 && slices.Equal(union, all)
	})
	_, ca := a.state()
	_, cb := b.state()
	t.Logf("member a: %v, member b: %v", ca, cb)

	cfg := saramaConfig()
	cfg.Producer.Partitioner = sarama.NewManualPartitioner
	p, err := sarama.NewSyncProducer(c.Addrs(), cfg)
	if err != nil {
		t.Fatalf("new producer: %v", err)
	}
	t.Cleanup(func() { p.Close() })
	for _, part := range all {
		if _, _, err := p.SendMessage(&sarama.ProducerMessage{Topic: "events", Partition: part, Value: sarama.StringEncoder("v")}); err != nil {
			t.Fatalf("send to partition %d: %v", part, err)
		}
	}

	received := func(m *member) map[int32]int {
		m.mu.Lock()
		defer m.mu.Unlock()
		return maps.Clone(m.received)
	}
	waitFor(t, "each partition's message to reach its owner", func() bool {
		return len(received(a))+len(received(b)) >= len(all)
	})
	for _, tc := range []struct {
		name  string
		m     *member
		owned []int32
	}{{"a", a, ca}, {"b", b, cb}} {
		got := received(tc.m)
		if parts := slices.Sorted(maps.Keys(got)); !slices.Equal(parts, tc.owned) {
			t.Errorf("member %s received from partitions %v, owns %v", tc.name, parts, tc.owned)
		}
		for part, n := range got {
			if n != 1 {
				t.Errorf("member %s received %d messages from partition %d, want 1", tc.name, n, part)
			}
		}
	}
}

// TestGroupMinSessionTimeout proves the option reaches the cluster: a member
// asking for a session timeout below the minimum is refused.
func TestGroupMinSessionTimeout(t *testing.T) {
	c := kafkatest.NewCluster(t, kafkatest.Topic("events", 1, nil), kafkatest.GroupMinSessionTimeout(3*time.Second))
	cfg := saramaConfig()
	cfg.Consumer.Group.Session.Timeout = 2 * time.Second
	cfg.Consumer.Group.Heartbeat.Interval = 200 * time.Millisecond
	g, err := sarama.NewConsumerGroup(c.Addrs(), "short", cfg)
	if err != nil {
		t.Fatalf("new consumer group: %v", err)
	}
	t.Cleanup(func() { g.Close() })
	err = g.Consume(timeoutCtx(t), []string{"events"}, &member{received: make(map[int32]int)})
	if !errors.Is(err, sarama.ErrInvalidSessionTimeout) {
		t.Fatalf("join with a 2s session timeout under a 3s minimum: %v, want %v", err, sarama.ErrInvalidSessionTimeout)
	}
}
