package kafkatest_test

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"testing"

	"github.com/IBM/sarama"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// TestPlatformTopics proves that the catalogue's topics exist with their
// partition counts, replication factors and retention, as sarama's admin
// client sees them, and that Topic passes configs through.
func TestPlatformTopics(t *testing.T) {
	c := kafkatest.NewCluster(t,
		kafkatest.Topics(events.PlatformTopics()...),
		kafkatest.Topic("custom", 2, map[string]string{"retention.ms": "60000", "cleanup.policy": "compact"}),
	)
	admin, err := sarama.NewClusterAdmin(c.Addrs(), saramaConfig())
	if err != nil {
		t.Fatalf("new admin: %v", err)
	}
	t.Cleanup(func() { admin.Close() })

	topics, err := admin.ListTopics()
	if err != nil {
		t.Fatalf("list topics: %v", err)
	}
	want := events.PlatformTopics()
	want = append(want, broker.TopicSpec{Name: "custom", Partitions: 2, ReplicationFactor: 3})
	for _, spec := range want {
		got, ok := topics[spec.Name]
		if !ok {
			t.Errorf("topic %s missing; have %v", spec.Name, slices.Collect(maps.Keys(topics)))
			continue
		}
		if got.NumPartitions != spec.Partitions {
			t.Errorf("%s: %d partitions, want %d", spec.Name, got.NumPartitions, spec.Partitions)
		}
		if got.ReplicationFactor != spec.ReplicationFactor {
			t.Errorf("%s: replication factor %d, want %d", spec.Name, got.ReplicationFactor, spec.ReplicationFactor)
		}
	}

	wantConfigs := map[string]map[string]string{
		"custom": {"retention.ms": "60000", "cleanup.policy": "compact"},
	}
	for _, spec := range events.PlatformTopics() {
		wantConfigs[spec.Name] = map[string]string{"retention.ms": strconv.FormatInt(spec.Retention.Milliseconds(), 10)}
	}
	for topic, configs := range wantConfigs {
		res, err := admin.DescribeConfigs([]*sarama.ConfigResource{{
			Type:        sarama.TopicResource,
			Name:        topic,
			ConfigNames: slices.Collect(maps.Keys(configs)),
		}}, sarama.DescribeConfigsOptions{})
		if err != nil || len(res) != 1 || res[0].ErrorCode != sarama.ErrNoError {
			t.Fatalf("describe config of %s: %v %+v", topic, err, res)
		}
		entries := res[0].Configs
		got := make(map[string]string)
		for _, e := range entries {
			got[e.Name] = e.Value
		}
		for name, value := range configs {
			if got[name] != value {
				t.Errorf("%s: %s = %q, want %q", topic, name, got[name], value)
			}
		}
	}
}

// TestBrokersAndClose proves that BrokerIDs and Addrs match what a client
// learns from metadata, that the replication factor is capped at the
// broker count, and that a closed cluster refuses further operations.
func TestBrokersAndClose(t *testing.T) {
	c := kafkatest.NewCluster(t, kafkatest.Brokers(2), kafkatest.Topics(events.PlatformTopics()...))
	if got := c.BrokerIDs(); !slices.Equal(got, []int32{0, 1}) {
		t.Fatalf("BrokerIDs() = %v, want [0 1]", got)
	}
	cl := newClient(t, c)
	fromMeta := make(map[string]int32)
	for _, b := range cl.Brokers() {
		fromMeta[b.Addr()] = b.ID()
	}
	addrs := c.Addrs()
	if len(addrs) != 2 || len(fromMeta) != 2 {
		t.Fatalf("Addrs() = %v, metadata brokers = %v", addrs, fromMeta)
	}
	for _, a := range addrs {
		if _, ok := fromMeta[a]; !ok {
			t.Errorf("address %s not in metadata %v", a, fromMeta)
		}
	}
	topics, err := cl.Topics()
	if err != nil {
		t.Fatalf("topics: %v", err)
	}
	if len(topics) != len(events.PlatformTopics()) {
		t.Errorf("topics = %v, want the %d platform topics", topics, len(events.PlatformTopics()))
	}
	replicas, err := cl.Replicas(events.PlatformTopics()[0].Name, 0)
	if err != nil {
		t.Fatalf("replicas: %v", err)
	}
	if len(replicas) != 2 {
		t.Errorf("replicas = %v, want 2 (capped at the broker count)", replicas)
	}
	if _, ok := c.Leader(events.PlatformTopics()[0].Name, 0); !ok {
		t.Errorf("Leader of an existing partition reported missing")
	}
	if _, ok := c.Leader("no-such-topic", 0); ok {
		t.Errorf("Leader of a missing partition reported present")
	}

	c.Close()
	c.Close() // idempotent
	if got := c.Addrs(); got != nil {
		t.Errorf("Addrs() after Close = %v, want nil", got)
	}
	if err := c.RemoveBroker(0); !errors.Is(err, kafkatest.ErrClosed) {
		t.Errorf("RemoveBroker after Close: %v, want ErrClosed", err)
	}
	if _, err := c.AddBroker(); !errors.Is(err, kafkatest.ErrClosed) {
		t.Errorf("AddBroker after Close: %v, want ErrClosed", err)
	}
}

// TestRemoveAndAddBroker proves that a producer and a consumer keep working,
// with no loss, duplicate or reordering, while the broker leading a partition
// is removed and a new broker is added.
func TestRemoveAndAddBroker(t *testing.T) {
	const topic, perPhase = "events", 40
	c := kafkatest.NewCluster(t, kafkatest.Topic(topic, 3, nil))
	w := &workload{topic: topic, keys: 4}
	p := newProducer(t, c)
	col := collect(t, c, topic)

	if err := w.send(p, 0, perPhase); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "phase 1 consumed", func() bool { return col.count() == w.keys*perPhase })

	victim, ok := c.Leader(topic, 0)
	if !ok {
		t.Fatal("no leader for partition 0")
	}
	if err := c.RemoveBroker(victim); err != nil {
		t.Fatalf("remove broker: %v", err)
	}
	if slices.Contains(c.BrokerIDs(), victim) {
		t.Fatalf("BrokerIDs() = %v still holds removed broker %d", c.BrokerIDs(), victim)
	}
	for part := range int32(3) {
		if l, _ := c.Leader(topic, part); l == victim {
			t.Fatalf("partition %d still led by removed broker %d", part, victim)
		}
	}
	if err := c.RemoveBroker(victim); err == nil {
		t.Error("removing a removed broker succeeded")
	}
	if err := w.send(p, perPhase, 2*perPhase); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "phase 2 consumed", func() bool { return col.count() == 2*w.keys*perPhase })

	added, err := c.AddBroker()
	if err != nil {
		t.Fatalf("add broker: %v", err)
	}
	if !slices.Contains(c.BrokerIDs(), added) || len(c.Addrs()) != 3 {
		t.Fatalf("after AddBroker: BrokerIDs() = %v, Addrs() = %v", c.BrokerIDs(), c.Addrs())
	}
	// Give the new broker some partitions for sure.
	for part := range int32(3) {
		if err := c.MoveLeaderTo(topic, part, added); err != nil {
			t.Fatalf("move leader to new broker: %v", err)
		}
	}
	if err := w.send(p, 2*perPhase, 3*perPhase); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "phase 3 consumed", func() bool { return col.count() >= 3*w.keys*perPhase })

	if n := logSize(t, c, topic); n != int64(3*w.keys*perPhase) {
		t.Errorf("log holds %d records, want %d", n, 3*w.keys*perPhase)
	}
	verifyOrder(t, col, w.keys, 3*perPhase)
}
