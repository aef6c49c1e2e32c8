package rabbittest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/internal/envconf"
)

// Environment variables describing the cluster, as printed by
// `scripts/rabbit-cluster.sh env`.
const (
	// EnvClusterURLs holds the comma-separated AMQP URLs of the cluster's
	// nodes. Without it [Cluster] skips (or fails in CI).
	EnvClusterURLs = "AMQP_CLUSTER_URLS"
	// EnvClusterNodes holds the comma-separated Erlang node names, in the
	// order of EnvClusterURLs (rabbit1@localhost,...). Needed by Kill, Start
	// and Leader.
	EnvClusterNodes = "AMQP_CLUSTER_NODES"
	// EnvClusterDir is the state directory of scripts/rabbit-cluster.sh: for
	// node name@host it holds name/rabbitmq-env.conf (the node's RABBITMQ_*
	// variables) and name/rabbitmq.pid. Needed by Kill and Start.
	EnvClusterDir = "RABBIT_CLUSTER_DIR"
)

// Bounds on the cluster operations.
const (
	killTimeout  = 15 * time.Second
	startTimeout = 2 * time.Minute
	ctlTimeout   = 30 * time.Second
)

// errClusterUnset means AMQP_CLUSTER_URLS is unset: skip outside CI.
var errClusterUnset = errors.New(EnvClusterURLs + " is unset")

// howToCluster says how to get a cluster; it ends every skip message.
const howToCluster = "to run RabbitMQ cluster tests, start the 3-node test cluster with " +
	"`scripts/rabbit-cluster.sh up` and export its settings with " +
	"`eval \"$(scripts/rabbit-cluster.sh env)\"` (stop it with `scripts/rabbit-cluster.sh down`)"

// ClusterFixture is a running multi-node RabbitMQ cluster a test may break:
// kill nodes, start them again, and find quorum queue leaders. Node names
// are Erlang node names such as "rabbit1@localhost". Methods that take the
// test down with t.Fatal (Kill, Start) must run on the test's goroutine;
// the others are safe for concurrent use.
type ClusterFixture struct {
	t     testing.TB
	cfg   clusterConfig
	names *nameSet
	tools tools

	mu     sync.Mutex
	killed map[string]bool // killed by Kill and not started again
}

// clusterConfig is what the environment says about the cluster.
type clusterConfig struct {
	urls  []string
	nodes []string // empty, or one per URL
	dir   string
}

// clusterLockWait bounds the wait for another test's hold on the cluster.
const clusterLockWait = 5 * time.Minute

// Cluster returns the cluster described by AMQP_CLUSTER_URLS,
// AMQP_CLUSTER_NODES and RABBIT_CLUSTER_DIR after checking that every node
// answers. The test holds the cluster alone until its end: a cluster test
// of another package (go test runs packages in parallel) waits for it. It skips the test when AMQP_CLUSTER_URLS is unset, or fails it
// when the CI environment variable is non-empty. At t.Cleanup it starts
// again every node the test killed and left down, then deletes the names
// handed out by [ClusterFixture.Name] as [New] does.
func Cluster(t testing.TB) *ClusterFixture {
	t.Helper()
	return newCluster(t, os.Getenv)
}

func newCluster(t testing.TB, getenv func(string) string) *ClusterFixture {
	t.Helper()
	cfg, err := clusterConfigFrom(getenv)
	switch {
	case err == nil:
	case errors.Is(err, errClusterUnset) && getenv(EnvCI) == "":
		t.Skipf("rabbittest: %v; %s", err, howToCluster)
	case errors.Is(err, errClusterUnset):
		t.Fatalf("rabbittest: %v, and %s is set so cluster tests must not skip; %s", err, EnvCI, howToCluster)
	default:
		t.Fatalf("rabbittest: %v", err)
	}
	// One cluster test at a time, across the packages go test runs in
	// parallel: a test that kills nodes must not overlap another's.
	unlock, err := lockCluster(cfg.dir, clusterLockWait)
	if err != nil {
		t.Fatalf("rabbittest: %v", err)
	}
	t.Cleanup(unlock) // registered first: runs last, after the restore
	ctx := context.Background()
	for _, u := range cfg.urls {
		if err := probe(ctx, u, envProbeTimeout); err != nil {
			t.Fatalf("rabbittest: cluster node does not answer (a previous test may have left it down; see `scripts/rabbit-cluster.sh status`): %v", err)
		}
	}
	c := &ClusterFixture{
		t:      t,
		cfg:    cfg,
		names:  newNameSet(t.Name()),
		tools:  defaultTools(),
		killed: make(map[string]bool),
	}
	t.Cleanup(func() {
		if err := deleteAll(cfg.urls, c.names.all()); err != nil {
			t.Errorf("rabbittest: cleanup: %v", err)
		}
	})
	t.Cleanup(c.restoreKilled) // runs first: names are deleted on a whole cluster
	return c
}

// clusterConfigFrom reads and checks the cluster variables.
func clusterConfigFrom(getenv func(string) string) (clusterConfig, error) {
	cfg := clusterConfig{
		urls:  envconf.Split(getenv(EnvClusterURLs)),
		nodes: envconf.Split(getenv(EnvClusterNodes)),
		dir:   getenv(EnvClusterDir),
	}
	if len(cfg.urls) == 0 {
		return cfg, errClusterUnset
	}
	if len(cfg.nodes) > 0 && len(cfg.nodes) != len(cfg.urls) {
		return cfg, fmt.Errorf("%s lists %d nodes but %s lists %d URLs; they must match one to one",
			EnvClusterNodes, len(cfg.nodes), EnvClusterURLs, len(cfg.urls))
	}
	for _, n := range cfg.nodes {
		if name, host, ok := strings.Cut(n, "@"); !ok || name == "" || host == "" {
			return cfg, fmt.Errorf("%s: %q is not an Erlang node name (name@host)", EnvClusterNodes, n)
		}
	}
	return cfg, nil
}

// Nodes returns the Erlang node names of the cluster, in the order of
// [ClusterFixture.URLs]; nil when AMQP_CLUSTER_NODES is unset.
func (c *ClusterFixture) Nodes() []string { return slices.Clone(c.cfg.nodes) }

// URLs returns the AMQP URL of every node, for clients that fail over.
func (c *ClusterFixture) URLs() []string { return slices.Clone(c.cfg.urls) }

// URL returns the AMQP URL of node, or "" if node is not in the cluster.
func (c *ClusterFixture) URL(node string) string {
	if i := slices.Index(c.cfg.nodes, node); i >= 0 {
		return c.cfg.urls[i]
	}
	return ""
}

// Name returns a queue or exchange name unique to the test, as
// [Fixture.Name] does, and deletes it at cleanup.
func (c *ClusterFixture) Name(prefix string) string { return c.names.next(prefix) }

// Track adds names built by the code under test to the cleanup, as
// [Fixture.Track] does.
func (c *ClusterFixture) Track(names ...string) { c.names.track(names...) }

// Kill kills node's Erlang VM with SIGKILL, like a crash or an OOM kill,
// and returns once the process is gone and its AMQP port refuses
// connections. The node stays down until [ClusterFixture.Start] or the
// fixture's cleanup starts it. It fails the test if node is unknown, its pid
// file does not name a live beam.smp of that node, or it does not die
// within 15 seconds.
func (c *ClusterFixture) Kill(node string) {
	c.t.Helper()
	start := time.Now()
	if err := c.kill(node); err != nil {
		c.t.Fatalf("rabbittest: kill %s: %v", node, err)
	}
	c.t.Logf("rabbittest: killed %s in %v", node, time.Since(start).Round(time.Millisecond))
}

// Start starts node again and returns once it accepts AMQP connections and
// reports every node that is not known to be killed as running in its
// cluster. Starting a node that is running is a no-op apart from that wait.
// It fails the test if the node is not back within 2 minutes.
func (c *ClusterFixture) Start(node string) {
	c.t.Helper()
	begin := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	if err := c.start(ctx, node); err != nil {
		c.t.Fatalf("rabbittest: start %s: %v", node, err)
	}
	c.t.Logf("rabbittest: %s back in the cluster after %v", node, time.Since(begin).Round(time.Millisecond))
}

// restoreKilled starts the nodes the test killed and left down.
func (c *ClusterFixture) restoreKilled() {
	c.mu.Lock()
	var down []string
	for n := range c.killed {
		down = append(down, n)
	}
	c.mu.Unlock()
	slices.Sort(down)
	for _, n := range down {
		ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
		err := c.start(ctx, n)
		cancel()
		if err != nil {
			c.t.Errorf("rabbittest: cleanup: start %s again: %v", n, err)
		}
	}
}

// Leader returns the node that leads the quorum queue named queue in the
// default vhost, as reported by `rabbitmqctl list_queues` on the first node
// not killed by this fixture (each call costs about a second). The answer
// may lag an election by a moment: poll it with a deadline after a kill.
func (c *ClusterFixture) Leader(ctx context.Context, queue string) (string, error) {
	node, err := c.liveNode()
	if err != nil {
		return "", err
	}
	return c.tools.leader(ctx, node, queue)
}

// RunningNodes returns the nodes the cluster reports as running, as seen by
// the first node not killed by this fixture, sorted.
func (c *ClusterFixture) RunningNodes(ctx context.Context) ([]string, error) {
	node, err := c.liveNode()
	if err != nil {
		return nil, err
	}
	return c.tools.runningNodes(ctx, node)
}

func (c *ClusterFixture) liveNode() (string, error) {
	if len(c.cfg.nodes) == 0 {
		return "", fmt.Errorf("%s is unset; %s", EnvClusterNodes, howToCluster)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.cfg.nodes {
		if !c.killed[n] {
			return n, nil
		}
	}
	return "", errors.New("every node of the cluster is killed")
}

// nodeFiles returns the environment file and pid file of node.
func (c *ClusterFixture) nodeFiles(node string) (envFile, pidFile string, err error) {
	if !slices.Contains(c.cfg.nodes, node) {
		return "", "", fmt.Errorf("unknown node %q (%s=%s)", node, EnvClusterNodes, strings.Join(c.cfg.nodes, ","))
	}
	if c.cfg.dir == "" {
		return "", "", fmt.Errorf("%s is unset; %s", EnvClusterDir, howToCluster)
	}
	short, _, _ := strings.Cut(node, "@")
	d := filepath.Join(c.cfg.dir, short)
	return filepath.Join(d, "rabbitmq-env.conf"), filepath.Join(d, "rabbitmq.pid"), nil
}

func (c *ClusterFixture) kill(node string) error {
	_, pidFile, err := c.nodeFiles(node)
	if err != nil {
		return err
	}
	pid, err := nodePID(pidFile, node)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.killed[node] = true
	c.mu.Unlock()
	if err := killProcess(pid); err != nil {
		return fmt.Errorf("pid %d: %w", pid, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), killTimeout)
	defer cancel()
	addr, err := hostPort(c.URL(node))
	if err != nil {
		return err
	}
	return pollUntil(ctx, 50*time.Millisecond, func() (bool, error) {
		return !processAlive(pid) && !portOpen(addr), nil
	})
}

func (c *ClusterFixture) start(ctx context.Context, node string) error {
	envFile, pidFile, err := c.nodeFiles(node)
	if err != nil {
		return err
	}
	env, err := readEnvFile(envFile)
	if err != nil {
		return err
	}
	addr, err := hostPort(c.URL(node))
	if err != nil {
		return err
	}
	// Launch only if no VM of this node runs: a second rabbitmq-server for a
	// running (or still booting) node fails, and deletes the pid file of the
	// live one on its way out.
	if _, err := nodePID(pidFile, node); err != nil {
		if err := os.Remove(pidFile); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove stale pid file: %w", err)
		}
		if err := c.tools.startServer(ctx, envFile, env); err != nil {
			return err
		}
	}
	url := c.URL(node)
	err = pollUntil(ctx, 250*time.Millisecond, func() (bool, error) {
		if pid, err := readPID(pidFile); err == nil && !processAlive(pid) { // the pid file is the new VM's
			return false, fmt.Errorf("node died during boot (pid %d); see its log under %s", pid, filepath.Dir(pidFile))
		}
		return probe(ctx, url, 2*time.Second) == nil, nil
	})
	if err != nil {
		return fmt.Errorf("wait for AMQP on %s: %w", addr, err)
	}
	c.mu.Lock()
	delete(c.killed, node)
	var want []string
	for _, n := range c.cfg.nodes {
		if !c.killed[n] {
			want = append(want, n)
		}
	}
	c.mu.Unlock()
	var last []string
	err = pollUntil(ctx, 500*time.Millisecond, func() (bool, error) {
		running, err := c.tools.runningNodes(ctx, node)
		if err != nil {
			return false, nil // the CLI can fail while the node finishes booting
		}
		last = running
		for _, n := range want {
			if !slices.Contains(running, n) {
				return false, nil
			}
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("wait for %s to see %v running (last saw %v): %w", node, want, last, err)
	}
	return nil
}

// pollUntil calls cond every interval until it returns true or an error, or
// ctx ends. It is how this package waits: never a bare sleep.
func pollUntil(ctx context.Context, interval time.Duration, cond func() (bool, error)) error {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		ok, err := cond()
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}
