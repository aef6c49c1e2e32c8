package kafkabus_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"testing"

	"github.com/IBM/sarama"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/kafkabus"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// liveTopic reads a topic's partition count and retention.ms with a plain
// sarama admin.
func liveTopic(t *testing.T, c *kafkatest.Cluster, name string) (partitions int, retention string) {
	t.Helper()
	ca, err := sarama.NewClusterAdmin(c.Addrs(), rawConfig())
	if err != nil {
		t.Fatalf("raw admin: %v", err)
	}
	defer ca.Close()
	md, err := ca.DescribeTopics([]string{name})
	if err != nil || len(md) != 1 || !errors.Is(md[0].Err, sarama.ErrNoError) {
		t.Fatalf("DescribeTopics(%s): %v %v", name, err, md)
	}
	entries, err := describeConfig(ca, sarama.ConfigResource{Type: sarama.TopicResource, Name: name, ConfigNames: []string{"retention.ms"}})
	if err != nil {
		t.Fatalf("DescribeConfig(%s): %v", name, err)
	}
	for _, e := range entries {
		if e.Name == "retention.ms" {
			retention = e.Value
		}
	}
	return len(md[0].Partitions), retention
}

// TestEnsureTopicsCreatesPlatformTopics provisions the five platform
// topics (and their dead-letter topics) on an empty cluster, reads them back
// with DescribeConfig, and checks a second run changes nothing.
func TestEnsureTopicsCreatesPlatformTopics(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	admin, err := kafkabus.NewAdmin(context.Background(), testConfig(cluster))
	if err != nil {
		t.Fatalf("NewAdmin: %v", err)
	}
	defer admin.Close()
	ctx := context.Background()
	rep, err := admin.EnsureTopics(ctx, events.PlatformTopics(), kafkabus.WithDeadLetterTopics())
	if err != nil {
		t.Fatalf("EnsureTopics: %v", err)
	}
	if len(rep.Created) != 10 || len(rep.Unchanged) != 0 || len(rep.Drift) != 0 {
		t.Fatalf("report %+v: want 10 created (5 topics + 5 dead-letter topics)", rep)
	}
	for _, spec := range events.PlatformTopics() {
		for _, name := range []string{spec.Name, broker.DeadLetterTopic(spec.Name)} {
			parts, retention := liveTopic(t, cluster, name)
			want := strconv.FormatInt(spec.Retention.Milliseconds(), 10)
			if parts != int(spec.Partitions) || retention != want {
				t.Errorf("%s: %d partitions, retention.ms %s; want %d and %s", name, parts, retention, spec.Partitions, want)
			}
		}
	}
	rep, err = admin.EnsureTopics(ctx, events.PlatformTopics())
	if err != nil || len(rep.Created) != 0 || len(rep.Unchanged) != 5 {
		t.Fatalf("second EnsureTopics = %+v, %v; want 5 unchanged", rep, err)
	}
}

// TestEnsureTopicsReportsDrift finds a live job-lifecycle topic with 3
// partitions and 1-day retention: EnsureTopics reports both differences as
// a DriftError and leaves the topic as it is.
func TestEnsureTopicsReportsDrift(t *testing.T) {
	cluster := kafkatest.NewCluster(t,
		kafkatest.Topic("job-lifecycle", 3, map[string]string{"retention.ms": "86400000"}))
	b := newBackend(t, cluster)
	rep, err := b.Admin().EnsureTopics(context.Background(), events.PlatformTopics())
	var de *kafkabus.DriftError
	if !errors.As(err, &de) || !errors.Is(err, kafkabus.ErrTopicDrift) {
		t.Fatalf("EnsureTopics = %v, want a *DriftError", err)
	}
	t.Logf("reported: %v", err)
	want := []kafkabus.TopicDrift{
		{Topic: "job-lifecycle", Setting: "partitions", Want: "10", Got: "3"},
		{Topic: "job-lifecycle", Setting: "retention.ms", Want: "2592000000", Got: "86400000"},
	}
	if !slices.Equal(de.Drift, want) || !slices.Equal(rep.Drift, want) {
		t.Fatalf("drift %v, want %v", de.Drift, want)
	}
	if len(rep.Created) != 4 {
		t.Errorf("created %v, want the 4 missing platform topics", rep.Created)
	}
	if parts, retention := liveTopic(t, cluster, "job-lifecycle"); parts != 3 || retention != "86400000" {
		t.Fatalf("the drifted topic was changed: %d partitions, retention.ms %s", parts, retention)
	}
}

// topicConfig reads one setting of a topic with a plain sarama admin.
func topicConfig(t *testing.T, c *kafkatest.Cluster, topic, name string) string {
	t.Helper()
	ca, err := sarama.NewClusterAdmin(c.Addrs(), rawConfig())
	if err != nil {
		t.Fatalf("raw admin: %v", err)
	}
	defer ca.Close()
	entries, err := describeConfig(ca, sarama.ConfigResource{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{name}})
	if err != nil {
		t.Fatalf("DescribeConfig(%s): %v", topic, err)
	}
	for _, e := range entries {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// describeConfig reads one resource's configuration entries.
func describeConfig(ca sarama.ClusterAdmin, res sarama.ConfigResource) ([]sarama.ConfigEntry, error) {
	rs, err := ca.DescribeConfigs([]*sarama.ConfigResource{&res}, sarama.DescribeConfigsOptions{})
	if err != nil {
		return nil, err
	}
	if len(rs) != 1 {
		return nil, fmt.Errorf("%d results for one resource", len(rs))
	}
	if rs[0].ErrorCode != sarama.ErrNoError {
		return nil, fmt.Errorf("%s: %w", rs[0].ErrorMsg, rs[0].ErrorCode)
	}
	return rs[0].Configs, nil
}
