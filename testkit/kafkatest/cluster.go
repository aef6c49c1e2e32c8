package kafkatest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ErrClosed is returned by the methods of a [Cluster] that has been closed.
var ErrClosed = errors.New("kafkatest: cluster closed")

// setupTimeout bounds the topic creation NewCluster does over the wire.
const setupTimeout = 15 * time.Second

// Cluster is a running in-process Kafka cluster. Its methods are safe to call
// from any goroutine, including the test goroutine while clients are
// producing and consuming.
type Cluster struct {
	kf  *kfake.Cluster
	lns *listeners

	// life guards closed: calls into kfake's event loop hold it for
	// reading, so that Close never runs under them (kfake's loop is gone
	// after Close and such calls would block forever).
	life   sync.RWMutex
	closed bool
	done   chan struct{} // closed by Close, ends the timers of delayed requests

	nodesMu sync.Mutex
	nodes   map[int32]string // broker ID -> listen address
}

// NewCluster starts a cluster of 3 brokers (see [Brokers]) on random ports of
// 127.0.0.1, creates the topics asked for by [Topic] and [PlatformTopics],
// and registers t.Cleanup to close it. It fails the test with t.Fatal if the
// options are invalid or the cluster cannot start, so it must be called from
// the test's goroutine.
func NewCluster(t testing.TB, opts ...Option) *Cluster {
	t.Helper()
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	c, err := start(cfg)
	if err != nil {
		t.Fatalf("kafkatest: %v", err)
	}
	t.Cleanup(c.Close)
	return c
}

// Start starts a cluster like [NewCluster] outside a test — for programs
// that embed Kafka, such as the reference demo and eventbench. The caller
// must Close it. Invalid options or a cluster that cannot start return an
// error and leave nothing running.
func Start(opts ...Option) (*Cluster, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o.apply(&cfg)
	}
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("kafkatest: %w", err)
	}
	c, err := start(cfg)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: %w", err)
	}
	return c, nil
}

// start runs a cluster for cfg; on error nothing is left running.
func start(cfg config) (*Cluster, error) {
	lns := newListeners()
	kopts := []kfake.Opt{
		kfake.NumBrokers(cfg.brokers),
		kfake.ListenFn(lns.listen),
		kfake.GroupMinSessionTimeout(cfg.minSessionTimeout),
	}
	kopts = append(kopts, cfg.kfakeOpts...)
	kf, err := kfake.NewCluster(kopts...)
	if err != nil {
		return nil, fmt.Errorf("start kfake cluster: %w", err)
	}
	c := &Cluster{
		kf:    kf,
		lns:   lns,
		done:  make(chan struct{}),
		nodes: make(map[int32]string),
	}
	// kfake numbers its initial brokers 0..n-1 in listening order, which
	// is the order ListenAddrs reports them in until a broker is removed.
	for i, addr := range kf.ListenAddrs() {
		c.nodes[int32(i)] = addr
	}
	if err := c.createTopics(cfg); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// createTopics creates cfg's topics with a CreateTopics request.
func (c *Cluster) createTopics(cfg config) error {
	if len(cfg.topics) == 0 {
		return nil
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.ClientID("kafkatest-setup"))
	if err != nil {
		return fmt.Errorf("setup client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), setupTimeout)
	defer cancel()

	brokers := len(c.BrokerIDs())
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(setupTimeout.Milliseconds())
	for _, spec := range cfg.topics {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic = spec.name
		rt.NumPartitions = spec.partitions
		rt.ReplicationFactor = spec.replication
		if int(rt.ReplicationFactor) > brokers {
			rt.ReplicationFactor = int16(brokers)
		}
		for _, name := range slices.Sorted(maps.Keys(spec.configs)) {
			rc := kmsg.NewCreateTopicsRequestTopicConfig()
			rc.Name = name
			rc.Value = kmsg.StringPtr(spec.configs[name])
			rt.Configs = append(rt.Configs, rc)
		}
		req.Topics = append(req.Topics, rt)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	var errs []error
	for _, rt := range resp.Topics {
		if err := kerr.ErrorForCode(rt.ErrorCode); err != nil {
			errs = append(errs, fmt.Errorf("create topic %q: %w", rt.Topic, err))
		}
	}
	return errors.Join(errs...)
}

// Addrs returns the bootstrap addresses ("127.0.0.1:port") of the brokers
// currently in the cluster, for a client's broker list. It returns nil once
// the cluster is closed.
func (c *Cluster) Addrs() []string {
	c.life.RLock()
	defer c.life.RUnlock()
	if c.closed {
		return nil
	}
	return c.kf.ListenAddrs()
}

// BrokerIDs returns the node IDs of the brokers currently in the cluster, in
// increasing order. It follows [Cluster.RemoveBroker] and
// [Cluster.AddBroker], not brokers added or removed through [Cluster.Kfake].
func (c *Cluster) BrokerIDs() []int32 {
	c.nodesMu.Lock()
	defer c.nodesMu.Unlock()
	return slices.Sorted(maps.Keys(c.nodes))
}

// Kfake returns the underlying kfake cluster, for what this package does not
// wrap. Close the Cluster rather than the kfake cluster: once kfake is
// closed its administrative methods block forever, and so would the
// Cluster's. Brokers added or removed through it are not seen by
// [Cluster.BrokerIDs].
func (c *Cluster) Kfake() *kfake.Cluster { return c.kf }

// Close stops the cluster: listeners and all client connections are closed,
// and requests held by [Cluster.Delay] are dropped unanswered. Clients see
// connection errors afterwards.
// Close is idempotent and is called by the t.Cleanup that [NewCluster]
// registers; methods called afterwards return [ErrClosed] or zero values.
func (c *Cluster) Close() {
	c.life.Lock()
	defer c.life.Unlock()
	if c.closed {
		return
	}
	c.closed = true
	// kfake first: a delayed request woken before the cluster is down
	// would still be answered.
	c.kf.Close()
	close(c.done)
}

// admin runs fn, which calls into kfake's event loop, unless the cluster is
// closed.
func (c *Cluster) admin(fn func() error) error {
	c.life.RLock()
	defer c.life.RUnlock()
	if c.closed {
		return ErrClosed
	}
	return fn()
}

// Leader returns the node ID of the broker leading the partition, and false
// if the partition does not exist or the cluster is closed.
func (c *Cluster) Leader(topic string, partition int32) (int32, bool) {
	leader := int32(-1)
	_ = c.admin(func() error {
		leader = c.kf.LeaderFor(topic, partition)
		return nil
	})
	return leader, leader >= 0
}

// MoveLeader makes the next broker (by node ID, wrapping around) the leader
// of the partition and returns its ID. The partition's leader epoch is
// bumped, so clients that still send to the old leader get
// NOT_LEADER_FOR_PARTITION and must refresh their metadata; no data moves
// or is lost. It fails if the partition does not exist or the cluster has a
// single broker.
func (c *Cluster) MoveLeader(topic string, partition int32) (int32, error) {
	cur, ok := c.Leader(topic, partition)
	if !ok {
		return -1, fmt.Errorf("kafkatest: move leader of %s/%d: no such partition", topic, partition)
	}
	ids := c.BrokerIDs()
	if len(ids) < 2 {
		return -1, fmt.Errorf("kafkatest: move leader of %s/%d: only one broker", topic, partition)
	}
	next := ids[0]
	for _, id := range ids {
		if id > cur {
			next = id
			break
		}
	}
	if err := c.MoveLeaderTo(topic, partition, next); err != nil {
		return -1, err
	}
	return next, nil
}

// MoveLeaderTo makes broker id the leader of the partition, bumping its
// leader epoch even if id already leads it. It fails if the partition or the
// broker does not exist.
func (c *Cluster) MoveLeaderTo(topic string, partition, id int32) error {
	return c.admin(func() error {
		if err := c.kf.MoveTopicPartition(topic, partition, id); err != nil {
			return fmt.Errorf("kafkatest: move leader of %s/%d to %d: %w", topic, partition, id, err)
		}
		return nil
	})
}

// ShuffleLeaders simulates a cluster-wide leader election: every partition of
// every topic gets a leader picked at random among the brokers (possibly
// the one it had) and its leader epoch bumped.
func (c *Cluster) ShuffleLeaders() {
	_ = c.admin(func() error {
		c.kf.ShufflePartitionLeaders()
		return nil
	})
}

// RemoveBroker takes broker id out of the cluster, as if it had died: its
// listener and every connection it accepted are closed, and it disappears
// from metadata. kfake then re-elects the leader of every partition, not only
// of those the broker led, picking at random among the remaining brokers
// (epochs bumped), and group coordinators are re-hashed over the remaining
// brokers. No data is lost, since replication in kfake is cosmetic. The
// last broker cannot be removed.
//
// kfake does not elect a new controller: the controller is the broker with
// the highest ID, and once it is removed the cluster reports no controller
// for good (admin requests that need one fail). Remove a lower ID (e.g.
// BrokerIDs()[0]) unless that is what the test is about.
func (c *Cluster) RemoveBroker(id int32) error {
	return c.admin(func() error {
		if err := c.kf.RemoveNode(id); err != nil {
			return fmt.Errorf("kafkatest: remove broker %d: %w", id, err)
		}
		c.nodesMu.Lock()
		addr := c.nodes[id]
		delete(c.nodes, id)
		c.nodesMu.Unlock()
		c.lns.closeConns(addr)
		return nil
	})
}

// AddBroker starts a new broker on a random port of 127.0.0.1 and returns its
// node ID, one more than the highest ID in the cluster. Like kfake's
// AddNode, it re-elects the leader of every partition at random among all
// brokers, the new one included (epochs bumped).
func (c *Cluster) AddBroker() (int32, error) {
	id := int32(-1)
	err := c.admin(func() error {
		nid, port, err := c.kf.AddNode(-1, 0)
		if err != nil {
			return fmt.Errorf("kafkatest: add broker: %w", err)
		}
		id = nid
		c.nodesMu.Lock()
		c.nodes[id] = net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		c.nodesMu.Unlock()
		return nil
	})
	return id, err
}
