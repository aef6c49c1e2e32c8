package kafkabus_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

func checkNamed(rep *broker.HealthReport, name string) (broker.HealthCheck, bool) {
	for _, c := range rep.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return broker.HealthCheck{}, false
}

// TestHealthReportsLag holds a subscription's handler while 1,500 events
// arrive: Health reports the backlog per partition (high-water mark −
// committed) and marks the group degraded above the 1,000 alert line, then
// healthy once the backlog is handled. Brokers, controller and topic
// checks are healthy throughout.
func TestHealthReportsLag(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	cfg := testConfig(cluster)
	cfg.LagGroups = []string{"watched-elsewhere"}
	b := openBackend(t, cfg)
	topic := newTopic(t, b, "lag", 3)
	group := "lag-" + topic
	gate := make(chan struct{})
	var once sync.Once
	open := func() { once.Do(func() { close(gate) }) }
	handled := newOrderLog()
	h := handled.handler(1)
	c, err := b.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: group, MaxInFlight: 1},
		func(ctx context.Context, m *broker.Message) error {
			<-gate
			return h(ctx, m)
		})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { open(); _ = c.Close() })
	publishKeys(t, b, topic, 10, 150, nil)
	// Another process's group, named in Config.LagGroups, reads everything.
	other := newOrderLog()
	oc, err := newBackend(t, cluster).Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: "watched-elsewhere"}, other.handler(2))
	if err != nil {
		t.Fatal(err)
	}
	other.waitHandled(t, 1500)
	if err := oc.Close(); err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()
	rep, err := b.Health(ctx)
	if err != nil {
		t.Fatalf("Health: %v", err)
	}
	for _, name := range []string{"brokers", "controller", "topic:" + topic} {
		if c, ok := checkNamed(rep, name); !ok || c.Status != broker.HealthHealthy {
			t.Errorf("check %s = %+v, want healthy", name, c)
		}
	}
	lag := rep.TotalLag(group, topic)
	lagCheck, _ := checkNamed(rep, "lag:"+group+"/"+topic)
	t.Logf("status %s; checks %+v; per partition %+v", rep.Status, rep.Checks, rep.Lag)
	if lag < 1500-1 || lag > 1500 || lagCheck.Status != broker.HealthDegraded || rep.Status != broker.HealthDegraded {
		t.Fatalf("with 1500 events waiting: total lag %d, check %+v, status %s; want ~1500 and degraded", lag, lagCheck, rep.Status)
	}
	if len(rep.Lag) != 6 || rep.TotalLag("watched-elsewhere", topic) != 0 {
		t.Errorf("lag has %d partitions (want 3 per group), watched-elsewhere lags %d (want 0)", len(rep.Lag), rep.TotalLag("watched-elsewhere", topic))
	}

	open()
	handled.waitHandled(t, 1500)
	deadline := time.Now().Add(waitTimeout) // commits are asynchronous (auto-commit every second)
	for {
		rep, err = b.Health(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.TotalLag(group, topic) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("lag stays at %d after everything was handled", rep.TotalLag(group, topic))
		}
		time.Sleep(100 * time.Millisecond) // polling the broker's view, not synchronising with our code
	}
	if rep.Status != broker.HealthHealthy {
		t.Errorf("status %s after the backlog cleared: %+v", rep.Status, rep.Checks)
	}
}

// TestHealthWithBrokerDown reports the cluster unreachable as an unhealthy
// check, not as an error.
func TestHealthWithBrokerDown(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	b := newBackend(t, cluster)
	if _, err := b.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	cluster.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := b.Health(ctx)
	if err != nil {
		t.Fatalf("Health with the cluster gone: %v", err)
	}
	if rep.Status != broker.HealthUnhealthy {
		t.Fatalf("status %s, want unhealthy: %+v", rep.Status, rep.Checks)
	}
	c, _ := checkNamed(rep, "brokers")
	if !strings.Contains(c.Message, "unreachable") && !strings.Contains(c.Message, "no broker") {
		t.Errorf("brokers check %+v", c)
	}
}

// TestHealthNoticesABrokerLeavingTheMetadata: Kafka drops a dead broker
// from its metadata, so "every broker in the metadata answers" stays true;
// Health compares with the configured bootstrap brokers instead.
func TestHealthNoticesABrokerLeavingTheMetadata(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	b := newBackend(t, cluster)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rep, err := b.Health(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c, _ := checkNamed(rep, "brokers"); c.Status != broker.HealthHealthy {
		t.Fatalf("brokers check before the removal: %+v", c)
	}
	// The lowest ID: kfake does not re-elect a removed controller (the
	// highest ID).
	if err := cluster.RemoveBroker(cluster.BrokerIDs()[0]); err != nil {
		t.Fatal(err)
	}
	if rep, err = b.Health(ctx); err != nil {
		t.Fatal(err)
	}
	c, _ := checkNamed(rep, "brokers")
	if c.Status != broker.HealthDegraded || !strings.Contains(c.Message, "3 bootstrap brokers") {
		t.Fatalf("brokers check after a broker left: %+v, want degraded naming the 3 configured brokers", c)
	}
	if rep.Status == broker.HealthHealthy {
		t.Errorf("overall status healthy with a broker gone: %+v", rep.Checks)
	}
}

// TestHealthDiscoversGroupsLeadersLogDirs: with LagDiscover, Health
// reports the lag of a group of another backend (another process) that it
// was never told of, also after that group's consumers stopped; "leaders"
// measures how lopsided leadership is; "log dirs" has no figure on kfake,
// which does not report volume sizes.
func TestHealthDiscoversGroupsLeadersLogDirs(t *testing.T) {
	cluster := kafkatest.NewCluster(t)
	cfg := testConfig(cluster)
	cfg.LagDiscover = true
	b := openBackend(t, cfg)
	topic := newTopic(t, b, "discover", 3)
	other := newBackend(t, cluster)
	seen := newOrderLog()
	c, err := other.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: "elsewhere-" + topic}, seen.handler(1))
	if err != nil {
		t.Fatal(err)
	}
	publishKeys(t, b, topic, 3, 10, nil)
	seen.waitHandled(t, 30)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	publishKeys(t, b, topic, 3, 20, nil) // 60 more, nobody consuming
	rep, err := b.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if lag := rep.TotalLag("elsewhere-"+topic, topic); lag != 60 {
		t.Fatalf("discovered group's lag %d, want 60; lag %+v, checks %+v", lag, rep.Lag, rep.Checks)
	}

	// Every partition of the topic led by one broker.
	ids := cluster.BrokerIDs()
	for p := range int32(3) {
		if err := cluster.MoveLeaderTo(topic, p, ids[0]); err != nil {
			t.Fatal(err)
		}
	}
	rep, err = b.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	leaders, ok := checkNamed(rep, "leaders")
	if !ok || leaders.Status != broker.HealthHealthy || leaders.Value <= 1 {
		t.Errorf("leaders check %+v, want healthy with a ratio above 1", leaders)
	}
	if dirs, ok := checkNamed(rep, "log dirs"); !ok || dirs.Status != broker.HealthHealthy || dirs.Value != -1 {
		t.Errorf("log dirs check %+v, want value -1 (kfake reports no volume size)", dirs)
	}
}
