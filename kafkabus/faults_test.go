package kafkabus_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// publishKeys publishes per events for each of keys keys, every key's
// events in order from its own goroutine, one Publish per event, and
// fails the test on any error. during runs while publishing.
func publishKeys(t *testing.T, p broker.Publisher, topic string, keys, per int, during func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, keys)
	for k := range keys {
		wg.Go(func() {
			for s := range per {
				m := &broker.Message{Topic: topic, Key: jobKey(k), Body: []byte("v"), Headers: broker.Headers{{Key: "seq", Value: strconv.Itoa(s)}}}
				if err := p.Publish(ctx, m); err != nil {
					errs <- fmt.Errorf("key %d seq %d: %w", k, s, err)
					return
				}
			}
		})
	}
	if during != nil {
		during()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Publish under faults: %v", err)
	}
}

// checkLog reads topic back with a plain consumer and checks every key
// holds exactly seqs 0..per-1, once each, in order.
func checkLog(t *testing.T, c *kafkatest.Cluster, topic string, keys, per int) {
	t.Helper()
	msgs := readAll(t, c, topic)
	next := map[string]int{}
	dups := 0
	for _, m := range msgs {
		seq := -1
		for _, h := range m.Headers {
			if string(h.Key) == "seq" {
				seq, _ = strconv.Atoi(string(h.Value))
			}
		}
		key := string(m.Key)
		switch {
		case seq == next[key]:
			next[key]++
		case seq < next[key]:
			dups++
		default:
			t.Errorf("log of %s: key %s has seq %d where %d was due (lost or reordered)", topic, key, seq, next[key])
			next[key] = seq + 1
		}
	}
	for k := range keys {
		if next[jobKey(k)] != per {
			t.Errorf("log of %s: key %s ends at seq %d, want %d", topic, jobKey(k), next[jobKey(k)], per)
		}
	}
	if dups > 0 {
		t.Errorf("log of %s: %d duplicate records (idempotence failed)", topic, dups)
	}
	t.Logf("log of %s: %d records, %d keys × %d, %d duplicates", topic, len(msgs), keys, per, dups)
}

// TestPublishSurvivesProduceFaults injects NOT_LEADER_FOR_PARTITION,
// REQUEST_TIMED_OUT after the write, and dropped connections into produce
// requests: every Publish succeeds, and the log holds every event once, in
// order per key.
func TestPublishSurvivesProduceFaults(t *testing.T) {
	const keys, per = 20, 100
	cluster := kafkatest.NewCluster(t)
	b := newBackend(t, cluster)
	topic := newTopic(t, b, "faults", 6)
	notLeader := cluster.FailNextTopic(kmsg.Produce, topic, 20, kerr.NotLeaderForPartition)
	timedOut := cluster.FailNextTopic(kmsg.Produce, topic, 10, kerr.RequestTimedOut)
	dropped := cluster.DropConnections(kmsg.Produce, 5)
	publishKeys(t, b, topic, keys, per, nil)
	t.Logf("faults hit: NOT_LEADER %d, REQUEST_TIMED_OUT %d, dropped connections %d", notLeader.Hits(), timedOut.Hits(), dropped.Hits())
	if notLeader.Hits() == 0 || timedOut.Hits() == 0 || dropped.Hits() == 0 {
		t.Errorf("a fault was never hit: the test proves nothing about it")
	}
	checkLog(t, cluster, topic, keys, per)
}

// TestClusterChangesDuringProduceAndConsume moves partition leaders, removes
// a broker and adds one while events are published and consumed: nothing is
// lost or reordered on either side, and the log has no duplicates.
func TestClusterChangesDuringProduceAndConsume(t *testing.T) {
	const keys, per = 20, 150
	cluster := kafkatest.NewCluster(t)
	b := newBackend(t, cluster)
	topic := newTopic(t, b, "moves", 6)
	log := newOrderLog()
	sub := broker.Subscription{Topic: topic, Group: "moves-" + topic, Concurrency: 4}
	cons, err := newBackend(t, cluster).Subscribe(context.Background(), sub, log.handler(1))
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	publishKeys(t, b, topic, keys, per, func() {
		log.waitHandled(t, keys*per/10)
		for p := range int32(6) {
			if _, err := cluster.MoveLeader(topic, p); err != nil {
				t.Errorf("MoveLeader: %v", err)
			}
		}
		log.waitHandled(t, keys*per/4)
		if err := cluster.RemoveBroker(1); err != nil {
			t.Errorf("RemoveBroker: %v", err)
		}
		log.waitHandled(t, keys*per/2)
		if _, err := cluster.AddBroker(); err != nil {
			t.Errorf("AddBroker: %v", err)
		}
		cluster.ShuffleLeaders()
	})
	log.waitAll(t, keys, per)
	if err := cons.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	dups, rewinds, _ := log.check(t)
	t.Logf("consumed %d events, %d duplicates in %d redelivered prefixes", log.handled.Load(), dups, rewinds)
	checkLog(t, cluster, topic, keys, per)
}

// TestOffsetsSurviveRestart stops a member mid-stream and starts a new
// process in the same group: it resumes exactly after the last handled
// message, with nothing handled twice and nothing skipped.
func TestOffsetsSurviveRestart(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	b := newBackend(t, cluster)
	topic := newTopic(t, b, "restart", 4)
	sub := broker.Subscription{Topic: topic, Group: "restart-" + topic, Concurrency: 8, MaxInFlight: 32}
	publishKeys(t, b, topic, 8, 50, nil)

	// The first process holds every handler after 150 events until Close
	// has begun, so it stops mid-stream with work in flight; the drain lets
	// that work finish and commits it.
	first := newOrderLog()
	gate := make(chan struct{})
	h := first.handler(1)
	cons, err := newBackend(t, cluster).Subscribe(context.Background(), sub, func(ctx context.Context, m *broker.Message) error {
		if first.handled.Load() >= 150 {
			<-gate
		}
		return h(ctx, m)
	})
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	first.waitHandled(t, 150)
	closed := make(chan error, 1)
	go func() { closed <- cons.Close() }()
	close(gate)
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	handled := first.handled.Load()
	if handled >= 400 {
		t.Fatalf("the first process handled everything (%d): the restart was not mid-stream", handled)
	}

	second := newOrderLog()
	cons2, err := newBackend(t, cluster).Subscribe(context.Background(), sub, second.handler(2))
	if err != nil {
		t.Fatalf("Subscribe after restart: %v", err)
	}
	deadline := time.Now().Add(waitTimeout)
	for handled+second.handled.Load() < 400 && time.Now().Before(deadline) {
		select {
		case <-second.changed:
		case <-time.After(time.Second):
		}
	}
	if err := cons2.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	// Together the two runs handled every event exactly once, in order.
	for k := range 8 {
		key := jobKey(k)
		all := append(append([]handling(nil), first.byKey[key]...), second.byKey[key]...)
		for i, h := range all {
			if h.seq != i {
				t.Fatalf("key %s: handling #%d was seq %d (first run %d, second run %d): not resumed exactly after the last handled",
					key, i, h.seq, len(first.byKey[key]), len(second.byKey[key]))
			}
		}
		if len(all) != 50 {
			t.Errorf("key %s: %d handled in all, want 50", key, len(all))
		}
	}
	t.Logf("first run handled %d, second %d", handled, second.handled.Load())
}

// TestJoinBehindCrashedMember: a member that dies without leaving its group
// (its LeaveGroup never arrives) holds the next join at the coordinator
// until its session runs out. That wait is longer than the client's read
// timeout here (2 s, set through the sarama escape hatch; sarama's default
// is 30 s against a 60 s default rebalance timeout), and Subscribe must
// still join instead of failing with an i/o timeout, because kafkabus
// reads JoinGroup responses for the rebalance timeout plus a margin.
func TestJoinBehindCrashedMember(t *testing.T) {
	c := kafkatest.NewCluster(t)
	cfg := testConfig(c)
	cfg.SessionTimeout, cfg.RebalanceTimeout = 6*time.Second, 6*time.Second
	first := openBackend(t, cfg)
	topic := newTopic(t, first, "crashed-member", 1)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	sub := broker.Subscription{Topic: topic, Group: "survivors"}
	noop := func(context.Context, *broker.Message) error { return nil }
	c1, err := first.Subscribe(ctx, sub, noop)
	if err != nil {
		t.Fatal(err)
	}
	// The "crash": the member stops heartbeating and its goodbye is lost.
	drop := c.DropConnections(kmsg.LeaveGroup, -1)
	_ = c1.Close()
	_ = first.Close()
	drop.Remove()

	cfg.Sarama = func(sc *sarama.Config) { sc.Net.ReadTimeout = 2 * time.Second }
	errs := &clientErrors{}
	cfg.Hooks = []broker.Hook{errs}
	second := openBackend(t, cfg)
	start := time.Now()
	c2, err := second.Subscribe(ctx, sub, noop)
	if err != nil {
		t.Fatalf("Subscribe behind a crashed member after %v: %v", time.Since(start).Round(time.Millisecond), err)
	}
	t.Logf("joined behind the crashed member after %v", time.Since(start).Round(time.Millisecond))
	// Subscribe also retries a join that timed out; the first one must
	// have waited long enough not to need it.
	if got := errs.all(); len(got) != 0 {
		t.Fatalf("the join behind the crashed member failed first: %v", got)
	}
	_ = c2.Close()
}

// clientErrors records the errors a backend reports through
// kafkabus.HookClientError.
type clientErrors struct {
	mu   sync.Mutex
	errs []error
}

func (c *clientErrors) OnClientError(_, _ string, _ int32, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.errs = append(c.errs, err)
}

func (c *clientErrors) all() []error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]error(nil), c.errs...)
}

// TestSubscribeJoinFailures: connections broken under the first JoinGroup
// requests are retried until the member joins; an error the caller must fix
// (here authorization) fails Subscribe at once, naming it.
func TestSubscribeJoinFailures(t *testing.T) {
	c := kafkatest.NewCluster(t)
	b := newBackend(t, c)
	topic := newTopic(t, b, "join-failures", 1)
	ctx, cancel := context.WithTimeout(context.Background(), waitTimeout)
	defer cancel()
	noop := func(context.Context, *broker.Message) error { return nil }

	drop := c.DropConnections(kmsg.JoinGroup, 3)
	cons, err := b.Subscribe(ctx, broker.Subscription{Topic: topic, Group: "flaky-network"}, noop)
	if err != nil {
		t.Fatalf("Subscribe with 3 broken joins: %v", err)
	}
	if n := drop.Hits(); n != 3 {
		t.Fatalf("%d joins dropped, want 3", n)
	}
	_ = cons.Close()

	// One refusal only: a Subscribe that retried it would join the second
	// time and return nil.
	c.FailNext(kmsg.JoinGroup, 1, kerr.GroupAuthorizationFailed)
	_, err = b.Subscribe(ctx, broker.Subscription{Topic: topic, Group: "forbidden"}, noop)
	if !errors.Is(err, sarama.ErrGroupAuthorizationFailed) {
		t.Fatalf("Subscribe refused by the coordinator: %v, want ErrGroupAuthorizationFailed", err)
	}
}
