package rabbitbus_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/rabbitbus"
)

// TestHealthNodesAndLagGroups: Backend.Health compares the nodes of
// Config.URLs that accept a connection with those listed (a node down is
// "degraded" although the client works on another), and reads the queue
// depth of a group of Config.LagGroups it does not consume with; a group
// queue not declared is unknown, not a failure.
func TestHealthNodesAndLagGroups(t *testing.T) {
	e := newEnv(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "amqp://guest:guest@" + ln.Addr().String() + "/"
	_ = ln.Close() // nothing listens there any more: a node down

	topic, group := e.f.Name("nodes"), "watched"
	e.track([]string{topic}, []string{group})
	e.declareGroup(t, broker.Subscription{Topic: topic, Group: group})
	ctx := deadline(t, 30*time.Second)
	if err := e.admin.Publish(ctx, &broker.Message{Topic: topic, Key: "k", Body: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, rabbitbus.Config{URLs: []string{e.url, dead}, LagGroups: []rabbitbus.LagGroup{
		{Topic: topic, Group: group}, {Topic: topic, Group: "never-declared"},
	}})
	rep, err := c.Health(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var nodes, missing *broker.HealthCheck
	for i, ch := range rep.Checks {
		switch {
		case ch.Name == rabbitbus.CheckNodes:
			nodes = &rep.Checks[i]
		case strings.Contains(ch.Name, "never-declared"):
			missing = &rep.Checks[i]
		}
	}
	if nodes == nil || nodes.Status != broker.HealthDegraded || nodes.Value != 1 || !strings.Contains(nodes.Message, "1 of 2") {
		t.Fatalf("nodes check %+v, want degraded, 1 of 2 reachable", nodes)
	}
	if missing == nil || missing.Status != broker.HealthUnknown {
		t.Errorf("undeclared group's check %+v, want unknown", missing)
	}
	if lag := rep.TotalLag(group, topic); lag != 1 {
		t.Errorf("watched group's lag %d, want 1 (lag %+v)", lag, rep.Lag)
	}
}
