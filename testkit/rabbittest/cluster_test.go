package rabbittest

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// TestClusterWithoutEnv: with AMQP_CLUSTER_URLS unset, Cluster skips with
// instructions, or fails when CI is set; an inconsistent environment fails.
func TestClusterWithoutEnv(t *testing.T) {
	for _, tc := range []struct {
		name     string
		env      map[string]string
		wantSkip bool
		wantMsg  string
	}{
		{"local dev skips", nil, true, "rabbit-cluster.sh up"},
		{"CI fails", map[string]string{EnvCI: "1"}, false, "rabbit-cluster.sh up"},
		{"mismatched nodes fail", map[string]string{
			EnvClusterURLs:  "amqp://127.0.0.1:5673/,amqp://127.0.0.1:5674/",
			EnvClusterNodes: "rabbit1@localhost",
		}, false, "must match"},
		{"bad node name fails", map[string]string{
			EnvClusterURLs:  "amqp://127.0.0.1:5673/",
			EnvClusterNodes: "rabbit1",
		}, false, "name@host"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runRec(t, func(tb testing.TB) { newCluster(tb, mapEnv(tc.env)) })
			if r.skipped != tc.wantSkip || r.failed == tc.wantSkip {
				t.Fatalf("skipped=%v failed=%v, want skip=%v: %s", r.skipped, r.failed, tc.wantSkip, r.msg)
			}
			if !strings.Contains(r.msg, tc.wantMsg) {
				t.Fatalf("message lacks %q: %s", tc.wantMsg, r.msg)
			}
		})
	}
}

// TestReadEnvFile: the node environment file written by the script parses
// to the variables a shell would see.
func TestReadEnvFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "rabbitmq-env.conf")
	content := "# comment\nRABBITMQ_NODENAME=rabbit1@localhost\n\nexport RABBITMQ_NODE_PORT=5673\n" +
		`ERL_FLAGS="-kernel inet_dist_use_interface {127,0,0,1}"` + "\n"
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readEnvFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"RABBITMQ_NODENAME=rabbit1@localhost",
		"RABBITMQ_NODE_PORT=5673",
		"ERL_FLAGS=-kernel inet_dist_use_interface {127,0,0,1}",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("readEnvFile = %q, want %q", got, want)
	}
	if err := os.WriteFile(p, []byte("not a variable\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := readEnvFile(p); err == nil {
		t.Fatal("a line without '=' was accepted")
	}
}

// requireNodes fails unless the cluster has node control and 3+ nodes.
func requireNodes(t *testing.T, c *ClusterFixture) []string {
	t.Helper()
	nodes := c.Nodes()
	if len(nodes) < 3 {
		t.Fatalf("need a cluster of at least 3 nodes with %s set, have %v", EnvClusterNodes, nodes)
	}
	return nodes
}

// TestClusterKillLeader: kill -9 of a quorum queue's leader is followed by
// a new leader on another node, no confirmed message is lost, the two
// survivors keep accepting confirmed publishes, and Start brings the node
// back into the cluster with the queue whole.
func TestClusterKillLeader(t *testing.T) {
	c := Cluster(t)
	nodes := requireNodes(t, c)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	q := c.Name("qq")
	first := mustDial(t, c.URL(nodes[0]), amqp.Config{})
	ch := mustChannel(t, first)
	if _, err := ch.QueueDeclare(q, true, false, false, false, amqp.Table{"x-queue-type": "quorum"}); err != nil {
		t.Fatalf("declare quorum queue: %v", err)
	}
	publishConfirmed(t, first, q, 500, []byte("before the crash"))

	var leader string
	waitFor(t, 30*time.Second, "a leader for "+q, func() bool {
		l, err := c.Leader(ctx, q)
		leader = l
		return err == nil
	})
	if !slices.Contains(nodes, leader) {
		t.Fatalf("Leader = %q, not one of %v", leader, nodes)
	}
	t.Logf("leader of %s: %s", q, leader)

	c.Kill(leader)
	if portOpen(mustHostPort(t, c.URL(leader))) {
		t.Fatalf("%s still accepts connections after Kill", leader)
	}
	killedAt := time.Now()
	var newLeader string
	waitFor(t, 60*time.Second, "a new leader", func() bool {
		l, err := c.Leader(ctx, q)
		newLeader = l
		return err == nil && l != leader
	})
	t.Logf("new leader %s after %v", newLeader, time.Since(killedAt).Round(time.Millisecond))

	survivor := newLeader
	conn := mustDial(t, c.URL(survivor), amqp.Config{})
	if n, err := queueDepth(conn, q); err != nil || n != 500 {
		t.Fatalf("depth on %s after the kill = %d, %v; want 500", survivor, n, err)
	}
	publishConfirmed(t, conn, q, 100, []byte("during the outage"))

	c.Start(leader)
	running, err := c.RunningNodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := slices.Sorted(slices.Values(nodes)); !slices.Equal(running, want) {
		t.Fatalf("running nodes after Start = %v, want %v", running, want)
	}
	back := mustDial(t, c.URL(leader), amqp.Config{})
	if n, err := queueDepth(back, q); err != nil || n != 600 {
		t.Fatalf("depth seen through the restarted %s = %d, %v; want 600", leader, n, err)
	}
}

// TestClusterCleanupRestartsKilledNodes: a node a test kills and leaves
// down is running again, in the cluster, once that test has ended.
func TestClusterCleanupRestartsKilledNodes(t *testing.T) {
	outer := Cluster(t)
	nodes := requireNodes(t, outer)
	victim := nodes[len(nodes)-1]
	ok := t.Run("kill and leave", func(t *testing.T) {
		c := Cluster(t)
		c.Kill(victim)
	})
	if !ok {
		t.Fatal("the inner test failed")
	}
	if err := probe(context.Background(), outer.URL(victim), 5*time.Second); err != nil {
		t.Fatalf("%s does not answer after the killing test ended: %v", victim, err)
	}
	running, err := outer.RunningNodes(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(running, victim) || len(running) != len(nodes) {
		t.Fatalf("running nodes = %v, want all of %v", running, nodes)
	}
}

func mustHostPort(t *testing.T, u string) string {
	t.Helper()
	hp, err := hostPort(u)
	if err != nil {
		t.Fatal(err)
	}
	return hp
}
