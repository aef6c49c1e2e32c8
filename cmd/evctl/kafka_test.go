package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/IBM/sarama"

	events "github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/kafkabus"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// kafkaEnv is a cluster with a topic, its dead-letter topic, and a client.
type kafkaEnv struct {
	c      *kafkatest.Cluster
	addrs  string
	b      *kafkabus.Backend
	bus    *events.Bus
	client sarama.Client
}

func newKafkaEnv(t *testing.T, opts ...kafkatest.Option) *kafkaEnv {
	t.Helper()
	c := kafkatest.NewCluster(t, opts...)
	cfg := kafkabus.Config{Brokers: c.Addrs(), ClientID: "evctl-test", RetryBackoff: 50 * time.Millisecond}
	b, err := kafkabus.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	bus, err := events.NewBus(b)
	if err != nil {
		t.Fatal(err)
	}
	client, err := sarama.NewClient(c.Addrs(), cfg.SaramaConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = client.Close() })
	return &kafkaEnv{c: c, addrs: strings.Join(c.Addrs(), ","), b: b, bus: bus, client: client}
}

// deadLetter publishes the dead letters of es, as the consumer runtime
// writes them (broker.DeadLetterMessage), to the dead-letter topic of
// their topic.
func (k *kafkaEnv) deadLetter(t *testing.T, group string, cause error, es ...eventmodels.Event) {
	t.Helper()
	for i, e := range es {
		m, err := k.bus.Message(e)
		if err != nil {
			t.Fatal(err)
		}
		m.Delivery = broker.Delivery{Partition: 0, Offset: int64(i), Attempt: 3}
		dl := broker.DeadLetterMessage(m, broker.DeadLetterTopic(m.Topic), group, cause, time.Now())
		if err := k.b.Publish(context.Background(), dl); err != nil {
			t.Fatal(err)
		}
	}
}

// read returns every message of topic.
func (k *kafkaEnv) read(t *testing.T, topic string) []*broker.Message {
	t.Helper()
	kb := &kafkaBackend{client: k.client}
	var out []*broker.Message
	if err := kb.scan(context.Background(), topic, 0, func(r *record) error {
		out = append(out, r.msg)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return out
}

// redrivenIDs counts the messages of topic that a redrive put there, by
// event ID.
func (k *kafkaEnv) redrivenIDs(t *testing.T, topic string) map[string]int {
	t.Helper()
	ids := map[string]int{}
	for _, m := range k.read(t, topic) {
		if m.Header(headerRedriveCount) != "" {
			ids[m.Header(broker.HeaderID)]++
		}
	}
	return ids
}

func idsOf(es []eventmodels.Event) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Envelope().EventID.String()
	}
	return out
}

func TestKafkaDeadLetters(t *testing.T) {
	const topic = eventmodels.TopicJobLifecycle
	k := newKafkaEnv(t, kafkatest.Topic(topic, 3, nil), kafkatest.Topic(topic+".dlq", 3, nil))
	failed := failedEvents(4)
	done := eventmodels.NewJobCompleted("u-2", "j-done", eventmodels.Usage{CPUHours: 1})
	k.deadLetter(t, "billing", broker.Permanent(errors.New("db down")), failed...)
	k.deadLetter(t, "audit", errors.New("schema mismatch"), done)
	dlq := topic + ".dlq"
	base := []string{"--brokers", k.addrs}

	t.Run("list", func(t *testing.T) {
		r := mustRun(t, append([]string{"dlq", "list", "--json"}, base...)...)
		got := decodeJSON[[]dlqSummary](t, r.stdout)
		if len(got) != 1 || got[0].Source != dlq || got[0].Count != 5 {
			t.Fatalf("list = %+v, want %s with 5", got, dlq)
		}
		errs := got[0].Errors
		if len(errs) != 2 || errs[0].Count != 4 || !strings.Contains(errs[0].Error, "db down") || errs[1].Count != 1 ||
			errs[0].Oldest == "" || errs[0].Topics[0] != topic || errs[1].Types[0] != eventmodels.TypeJobCompleted {
			t.Fatalf("errors = %+v", errs)
		}
		table := mustRun(t, append([]string{"dlq", "list"}, base...)...)
		if !strings.Contains(table.stdout, "DEAD LETTERS") || !strings.Contains(table.stdout, "schema mismatch") {
			t.Fatalf("table:\n%s", table.stdout)
		}
	})

	t.Run("show", func(t *testing.T) {
		r := mustRun(t, append([]string{"dlq", "show", "--json", "--type", eventmodels.TypeJobCompleted}, base...)...)
		vs := jsonLines(t, r.stdout)
		if len(vs) != 1 || vs[0].Key != "j-done" || vs[0].DeadLetter == nil || vs[0].DeadLetter.Group != "audit" ||
			vs[0].DeadLetter.Attempts != 3 || !strings.Contains(string(vs[0].Event), `"j-done"`) || vs[0].Headers[broker.HeaderDLQError] != "schema mismatch" {
			t.Fatalf("show --type: %+v", vs)
		}
		for _, c := range []struct {
			args []string
			want int
		}{
			{[]string{"--key", "j-1"}, 1},
			{[]string{"--error", "DB DOWN"}, 4},
			{[]string{"--id", idsOf(failed)[2]}, 1},
			{[]string{"--group", "billing"}, 4},
			{[]string{"--since", "1h"}, 5},
			{[]string{"--until", "1h"}, 0},
			{[]string{"--since", time.Now().Add(time.Hour).Format(time.RFC3339)}, 0},
			{[]string{"--limit", "2"}, 2},
		} {
			r := mustRun(t, append(append([]string{"dlq", "show", "--json"}, base...), c.args...)...)
			if got := len(jsonLines(t, r.stdout)); got != c.want {
				t.Errorf("show %v: %d messages, want %d", c.args, got, c.want)
			}
		}
		text := mustRun(t, append([]string{"dlq", "show", "--key", "j-0"}, base...)...)
		if !strings.Contains(text.stdout, "x-dlq-error: db down") || !strings.Contains(text.stdout, `"job_id": "j-0"`) {
			t.Fatalf("show text:\n%s", text.stdout)
		}
	})

	t.Run("dry-run", func(t *testing.T) {
		r := mustRun(t, append([]string{"dlq", "redrive", "--dry-run", "--json"}, base...)...)
		got := decodeJSON[struct {
			Results  []redriveResult `json:"results"`
			Messages []messageView   `json:"messages"`
		}](t, r.stdout)
		if len(got.Results) != 1 || got.Results[0].Redriven != 5 || len(got.Messages) != 5 || got.Messages[0].RedrivenTo != topic {
			t.Fatalf("dry run: %+v", got)
		}
		if n := len(k.read(t, topic)); n != 0 {
			t.Fatalf("dry run published %d messages", n)
		}
	})
}

// TestKafkaRedriveCrash stops a redrive after its second commit, runs it
// again, and checks that every selected dead letter reached the original
// topic exactly once; then stops one between a publish and its commit,
// where the design repeats exactly that one message.
func TestKafkaRedriveCrash(t *testing.T) {
	const topic = eventmodels.TopicJobLifecycle
	k := newKafkaEnv(t, kafkatest.Topic(topic, 3, nil), kafkatest.Topic(topic+".dlq", 3, nil))
	failed := failedEvents(6)
	k.deadLetter(t, "billing", errors.New("db down"), failed...)
	other := eventmodels.NewJobCompleted("u-2", "j-other", eventmodels.Usage{CPUHours: 1})
	k.deadLetter(t, "billing", errors.New("other"), other)
	args := []string{"dlq", "redrive", "--brokers", k.addrs, "--error", "db down"}

	crash := errors.New("injected crash")
	r := evctl(t, faults{afterCommit: func(n int) error {
		if n == 2 {
			return crash
		}
		return nil
	}}, args...)
	if r.code != exitFail || !strings.Contains(r.stderr, "injected crash") {
		t.Fatalf("crashed run: exit %d, stderr %s", r.code, r.stderr)
	}
	if got := k.redrivenIDs(t, topic); len(got) != 2 {
		t.Fatalf("after the crash: %d redriven, want 2", len(got))
	}
	mustRun(t, args...)
	got := k.redrivenIDs(t, topic)
	for _, id := range idsOf(failed) {
		if got[id] != 1 {
			t.Errorf("event %s redriven %d times, want exactly 1", id, got[id])
		}
	}
	if len(got) != len(failed) {
		t.Errorf("redriven %d events, want %d (the filter excludes the other one)", len(got), len(failed))
	}
	// A third run finds nothing left for this selection.
	again := mustRun(t, append(args, "--json")...)
	if res := decodeJSON[struct{ Results []redriveResult }](t, again.stdout); res.Results[0].Redriven != 0 {
		t.Fatalf("third run redrove %d", res.Results[0].Redriven)
	}
	for _, m := range k.read(t, topic) {
		if m.Header(headerRedriveCount) != "1" || m.Header(headerRedrivenAt) == "" || m.Key == "" || m.Header(broker.HeaderDLQTopic) != topic {
			t.Fatalf("redriven message lacks its key or headers: %+v", m)
		}
	}

	// Crash after the publish of the 2nd message of the other selection,
	// before its commit: the rerun publishes that one again.
	args2 := []string{"dlq", "redrive", "--brokers", k.addrs, "--type", eventmodels.TypeJobFailed, "--progress-group", "ops-1"}
	r = evctl(t, faults{afterPublish: func(n int) error {
		if n == 2 {
			return crash
		}
		return nil
	}}, args2...)
	if r.code != exitFail {
		t.Fatalf("crashed run: exit %d: %s", r.code, r.stderr)
	}
	mustRun(t, args2...)
	got = k.redrivenIDs(t, topic)
	dups := 0
	for _, id := range idsOf(failed) {
		switch got[id] {
		case 2:
		case 3:
			dups++
		default:
			t.Errorf("event %s: %d copies, want 2 (one per selection) or 3 (the one in flight at the crash)", id, got[id])
		}
	}
	if dups != 1 {
		t.Fatalf("%d messages repeated, want exactly 1 (the one between publish and commit)", dups)
	}
}

func TestKafkaTail(t *testing.T) {
	const topic = eventmodels.TopicJobLifecycle
	k := newKafkaEnv(t, kafkatest.Topic(topic, 3, nil))
	es := failedEvents(3)
	if err := k.bus.Publish(context.Background(), es...); err != nil {
		t.Fatal(err)
	}
	// A service's group with committed offsets.
	kb := &kafkaBackend{client: k.client}
	admin, err := sarama.NewClusterAdminFromClient(k.client)
	if err != nil {
		t.Fatal(err)
	}
	kb.admin = admin
	parts, _ := k.client.Partitions(topic)
	for _, p := range parts {
		if err := kb.commit(context.Background(), "metrics", topic, p, 0); err != nil {
			t.Fatal(err)
		}
	}
	before, err := kb.committed("metrics", topic, parts)
	if err != nil {
		t.Fatal(err)
	}
	groupsBefore, _ := admin.ListConsumerGroups()

	r := mustRun(t, "tail", topic, "--brokers", k.addrs, "--from-beginning", "--count", "3", "--json")
	vs := jsonLines(t, r.stdout)
	if len(vs) != 3 {
		t.Fatalf("tail --from-beginning: %d messages, want 3:\n%s", len(vs), r.stdout)
	}
	for _, v := range vs {
		if v.Type != eventmodels.TypeJobFailed || len(v.Event) == 0 {
			t.Fatalf("not decoded: %+v", v)
		}
	}

	out, wait := startTail(t, topic, "--brokers", k.addrs, "--count", "2")
	late := failedEvents(2)
	if err := k.bus.Publish(context.Background(), late...); err != nil {
		t.Fatal(err)
	}
	res := wait()
	if res.code != 0 {
		t.Fatalf("tail: exit %d: %s", res.code, res.stderr)
	}
	for _, e := range late {
		if !strings.Contains(out.String(), fmt.Sprintf(`"event_id":"%s"`, e.Envelope().EventID)) {
			t.Fatalf("tail missed %s:\n%s", e.Envelope().EventID, out.String())
		}
	}
	after, err := kb.committed("metrics", topic, parts)
	if err != nil {
		t.Fatal(err)
	}
	for p, off := range before {
		if after[p] != off {
			t.Fatalf("group metrics partition %d: committed %d before the tail, %d after", p, off, after[p])
		}
	}
	groupsAfter, _ := admin.ListConsumerGroups()
	if len(groupsAfter) != len(groupsBefore) {
		t.Fatalf("tailing created consumer groups: %v -> %v", groupsBefore, groupsAfter)
	}
}

func TestKafkaTopics(t *testing.T) {
	// notifications exists with 2 partitions where the catalogue says 5.
	k := newKafkaEnv(t, kafkatest.Topic(eventmodels.TopicNotifications, 2, nil))
	r := evctl(t, faults{}, "topics", "--brokers", k.addrs, "--json")
	if r.code != exitDrift {
		t.Fatalf("topics with drift: exit %d, want %d: %s", r.code, exitDrift, r.stderr)
	}
	rep := decodeJSON[topicsReport](t, r.stdout)
	if len(rep.Created) != 9 || len(rep.Drift) != 1 || rep.Drift[0].Topic != eventmodels.TopicNotifications || rep.Drift[0].Setting != "partitions" {
		t.Fatalf("first run: %+v", rep)
	}
	// Lag of a group: 3 messages on one partition, 1 committed.
	es := []eventmodels.Event{}
	for range 3 {
		es = append(es, eventmodels.NewJobFailed("u", "j-same", eventmodels.StatusRunning, eventmodels.ErrorUser, "x"))
	}
	if err := k.bus.Publish(context.Background(), es...); err != nil {
		t.Fatal(err)
	}
	kb := &kafkaBackend{client: k.client}
	p := int32(-1)
	for _, m := range k.read(t, eventmodels.TopicJobLifecycle) {
		p = m.Delivery.Partition
	}
	if err := kb.commit(context.Background(), "metrics", eventmodels.TopicJobLifecycle, p, 1); err != nil {
		t.Fatal(err)
	}
	r = evctl(t, faults{}, "topics", "--brokers", k.addrs, "--json", "--group", "metrics")
	rep = decodeJSON[topicsReport](t, r.stdout)
	if len(rep.Created) != 0 || len(rep.Unchanged) != 9 {
		t.Fatalf("second run: %+v", rep)
	}
	// One row per partition of the group's topic (kafkabus reports every
	// partition of a group's topics, committed on or not): the lag is on p.
	var total int64
	for _, l := range rep.Lag {
		if l.Group != "metrics" || l.Topic != eventmodels.TopicJobLifecycle {
			t.Fatalf("second run: lag of %s/%s, want only metrics/%s: %+v", l.Group, l.Topic, eventmodels.TopicJobLifecycle, rep.Lag)
		}
		total += l.Lag
		if l.Partition == p && (l.Lag != 2 || l.Committed != 1 || l.End != 3) {
			t.Fatalf("second run: partition %d: %+v, want lag 2 (committed 1, end 3)", p, l)
		}
	}
	if total != 2 {
		t.Fatalf("second run: total lag %d, want 2: %+v", total, rep.Lag)
	}
	table := evctl(t, faults{}, "topics", "--brokers", k.addrs, "--ensure=false")
	if table.code != 0 || !strings.Contains(table.stdout, "metrics") || strings.Contains(table.stdout, "DRIFT") {
		t.Fatalf("--ensure=false: exit %d\n%s%s", table.code, table.stdout, table.stderr)
	}
}
