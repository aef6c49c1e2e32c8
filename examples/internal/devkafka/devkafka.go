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

	"github.com/twmb/franz-go/pkg/kfake"
)

// Cluster is a running in-process cluster.
type Cluster struct{ kf *kfake.Cluster }

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
	return &Cluster{kf: kf}, nil
}

// Addrs returns the brokers' bootstrap addresses.
func (c *Cluster) Addrs() []string { return c.kf.ListenAddrs() }

// Close stops the cluster; what it held is gone.
func (c *Cluster) Close() { c.kf.Close() }
