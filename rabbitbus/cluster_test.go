package rabbitbus_test

import (
	"context"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/rabbitbus"
	"github.com/cosmic-horizons/events/testkit"
	"github.com/cosmic-horizons/events/testkit/rabbittest"
)

// TestNodeLoss runs on the 3-node cluster of scripts/rabbit-cluster.sh
// (skipped when it is not up, failed in CI): a publisher and two groups'
// subscribers, configured with the three URLs, work at 500 events/s while
// the node they are connected to — which also leads the groups' quorum
// queues — is killed with SIGKILL. Every confirmed event is consumed by
// each group, exactly once after de-duplication by event id, in order per
// key (repeats only as redeliveries), and publishing resumes on another
// node within seconds (the slowest publish is logged).
func TestNodeLoss(t *testing.T) {
	if testing.Short() {
		t.Skip("cluster fault test")
	}
	cl := rabbittest.Cluster(t)
	nodes, urls := cl.Nodes(), cl.URLs()
	if len(nodes) < 3 {
		t.Skipf("need 3 named nodes (AMQP_CLUSTER_NODES), have %v", nodes)
	}
	events := newConnEvents()
	cfg := rabbitbus.Config{URLs: urls, ReconnectBackoffMin: 50 * time.Millisecond, ReconnectBackoffMax: time.Second,
		Logger: testLogger(t), Hooks: []broker.Hook{events}}
	admin := newClient(t, rabbitbus.Config{URLs: urls})
	topic := cl.Name("nodeloss")
	groups := []string{"g1", "g2"}
	t.Cleanup(func() { deleteTopology(t, admin, []string{topic, broker.DeadLetterTopic(topic)}, groups) })
	c := newClient(t, cfg)

	captures := make([]*testkit.MessageCapture, len(groups))
	for i, g := range groups {
		captures[i] = testkit.NewMessageCapture()
		if _, err := c.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: g, Concurrency: 4}, captures[i].Handle); err != nil {
			t.Fatal(err)
		}
	}
	sub := events.waitFor(t, 10*time.Second, "subscriber connected", func(ev rabbitbus.ConnectionEvent) bool {
		return ev.Role == "subscriber" && ev.State == rabbitbus.StateConnected
	})
	pub := events.waitFor(t, 10*time.Second, "publisher connected", func(ev rabbitbus.ConnectionEvent) bool {
		return ev.Role == "publisher" && ev.State == rabbitbus.StateConnected
	})
	victim := nodeOf(t, nodes, urls, sub.Node)
	if p := nodeOf(t, nodes, urls, pub.Node); p != victim {
		t.Fatalf("publisher on %s, subscriber on %s: expected both on the first URL", p, victim)
	}
	for _, g := range groups {
		leader, err := cl.Leader(deadline(t, 30*time.Second), c.QueueName(topic, g))
		if err != nil {
			t.Fatal(err)
		}
		if leader != victim {
			t.Fatalf("queue of %s led by %s, not by %s where it was declared", g, leader, victim)
		}
	}

	type result struct {
		confirmed *confirmedSet
		failed    int64
		slowest   time.Duration
	}
	done := make(chan result, 1)
	go func() {
		cs, failed, slowest := paced(t, c, topic, 500, 20, 20*time.Second)
		done <- result{cs, failed, slowest}
	}()
	// Let traffic flow, then take the node down from the test goroutine.
	if err := captures[0].WaitFor(deadline(t, 30*time.Second), 1000); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	cl.Kill(victim)
	back := events.waitFor(t, 60*time.Second, "publisher reconnected", func(ev rabbitbus.ConnectionEvent) bool {
		return ev.Role == "publisher" && ev.State == rabbitbus.StateConnected && ev.Reconnects >= 1
	})
	t.Logf("killed %s; publisher reconnected to %s after %v", victim, back.Node, time.Since(killed).Round(10*time.Millisecond))
	res := <-done

	want := res.confirmed.snapshot()
	for i, g := range groups {
		if err := captures[i].WaitUntil(deadline(t, 120*time.Second), "every confirmed event in "+g, func(ms []*broker.Message) bool {
			return captures[i].Distinct() >= len(want)
		}); err != nil {
			t.Fatal(err)
		}
		msgs := captures[i].Messages()
		got := map[string]int{}
		for _, m := range msgs {
			got[m.Header(broker.HeaderID)]++
		}
		lost := 0
		for id := range want {
			if got[id] == 0 {
				lost++
			}
		}
		st := checkStream(t, msgs)
		t.Logf("%s: %d confirmed, %d lost, %d deliveries, %d distinct, %d duplicates (all redelivered), %d redelivered",
			g, len(want), lost, st.deliveries, st.distinct, st.duplicates, st.redelivered)
		if lost > 0 {
			t.Errorf("%s lost %d confirmed events", g, lost)
		}
		// Exactly once after de-duplication: besides the confirmed events,
		// only one whose Publish failed (it may or may not have arrived).
		if extra := st.distinct - (len(want) - lost); extra > int(res.failed) {
			t.Errorf("%s: %d distinct events after de-duplication for %d confirmed and %d failed publishes", g, st.distinct, len(want), res.failed)
		}
	}
	t.Logf("publishing: %d confirmed, %d failed; slowest publish %v (the outage as a publisher saw it)",
		len(want), res.failed, res.slowest.Round(time.Millisecond))
}

// nodeOf returns the node whose URL has the port of redacted.
func nodeOf(t *testing.T, nodes, urls []string, redacted string) string {
	t.Helper()
	u, err := url.Parse(redacted)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(urls, func(s string) bool {
		v, err := url.Parse(s)
		return err == nil && v.Host == u.Host
	})
	if i < 0 {
		t.Fatalf("connected to %s, which is none of %v", redacted, urls)
	}
	return nodes[i]
}
