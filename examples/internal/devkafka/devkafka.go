// Package devkafka runs a Kafka cluster inside the process, for the
// reference programs' embedded default: three brokers on random ports of
// 127.0.0.1 speaking the real Kafka wire protocol (franz-go's kfake), so
// kafkabus talks to it exactly as to a real cluster and other processes can
// join it at Addrs. It keeps everything in memory and forgets it on Close:
// a development convenience, not a Kafka to run a platform on. Topics are
// created by the programs themselves (kafkabus.Admin.EnsureTopics), as
// against a real cluster.
package devkafka

import (
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Cluster is a running in-process cluster.
type Cluster struct {
	kf *kfake.Cluster

	mu      sync.Mutex
	ports   map[int32]int // every broker's port, by node ID, removed ones included
	removed map[int32]bool
}

// Start starts a cluster of brokers brokers (at least 1) on random ports
// of 127.0.0.1. The caller must Close it.
func Start(brokers int) (*Cluster, error) {
	if brokers < 1 {
		return nil, fmt.Errorf("devkafka: %d brokers, want at least 1", brokers)
	}
	// kfake listens on 127.0.0.1 only. Its minimum group session timeout
	// is Kafka's (6s), below kafkabus's default (10s).
	kf, err := kfake.NewCluster(kfake.NumBrokers(brokers))
	if err != nil {
		return nil, fmt.Errorf("devkafka: start: %w", err)
	}
	c := &Cluster{kf: kf, ports: map[int32]int{}, removed: map[int32]bool{}}
	for i, a := range kf.ListenAddrs() { // node IDs are 0..n-1, in order
		_, port, _ := net.SplitHostPort(a)
		c.ports[int32(i)], _ = strconv.Atoi(port)
	}
	return c, nil
}

// RemoveBroker takes broker id out of the cluster, as a broker that died:
// it stops listening, leaves the metadata, and its partitions get other
// leaders (connections it accepted before stay open: kfake closes only the
// listener). RestoreBroker brings it back. kfake never elects another
// controller, which is the highest ID: removing it is refused.
func (c *Cluster) RemoveBroker(id int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.ports[id]; !ok || c.removed[id] {
		return fmt.Errorf("devkafka: no broker %d in the cluster", id)
	}
	if int(id) == len(c.ports)-1 {
		return fmt.Errorf("devkafka: broker %d is the controller, which kfake cannot move: remove another", id)
	}
	if err := c.kf.RemoveNode(id); err != nil {
		return fmt.Errorf("devkafka: remove broker %d: %w", id, err)
	}
	c.removed[id] = true
	return nil
}

// RestoreBroker brings back a broker RemoveBroker removed, on its former
// port (the bootstrap addresses stay valid).
func (c *Cluster) RestoreBroker(id int32) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.removed[id] {
		return fmt.Errorf("devkafka: broker %d was not removed", id)
	}
	if _, _, err := c.kf.AddNode(id, c.ports[id]); err != nil {
		return fmt.Errorf("devkafka: restore broker %d: %w", id, err)
	}
	delete(c.removed, id)
	return nil
}

// Addrs returns the brokers' bootstrap addresses.
func (c *Cluster) Addrs() []string { return c.kf.ListenAddrs() }

// Close stops the cluster; what it held is gone.
func (c *Cluster) Close() { c.kf.Close() }
