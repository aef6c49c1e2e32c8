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
	kf  *kfake.Cluster
	lns *listeners

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
	lns := &listeners{byAddr: map[string]*trackedListener{}}
	kf, err := kfake.NewCluster(kfake.NumBrokers(brokers), kfake.ListenFn(lns.listen))
	if err != nil {
		return nil, fmt.Errorf("devkafka: start: %w", err)
	}
	c := &Cluster{kf: kf, lns: lns, ports: map[int32]int{}, removed: map[int32]bool{}}
	for i, a := range kf.ListenAddrs() { // node IDs are 0..n-1, in order
		_, port, _ := net.SplitHostPort(a)
		c.ports[int32(i)], _ = strconv.Atoi(port)
	}
	return c, nil
}

// RemoveBroker takes broker id out of the cluster, as a broker that died:
// it stops listening, the connections it accepted are closed (kfake alone
// would keep serving them as a broker that leads nothing, and a client
// would never see its metadata change), it leaves the metadata, and its
// partitions get other leaders. RestoreBroker brings it back. kfake never elects another
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
	c.lns.closeConns(net.JoinHostPort("127.0.0.1", strconv.Itoa(c.ports[id])))
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

// listeners creates the brokers' listeners (kfake.ListenFn) and remembers
// them by address, so that the connections of a removed broker can be
// closed.
type listeners struct {
	mu     sync.Mutex
	byAddr map[string]*trackedListener
}

func (ls *listeners) listen(network, address string) (net.Listener, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	tl := &trackedListener{Listener: ln, conns: map[*trackedConn]struct{}{}}
	ls.mu.Lock()
	ls.byAddr[ln.Addr().String()] = tl
	ls.mu.Unlock()
	return tl, nil
}

// closeConns closes every connection accepted on addr and makes its
// listener refuse any it accepts later.
func (ls *listeners) closeConns(addr string) {
	ls.mu.Lock()
	tl := ls.byAddr[addr]
	delete(ls.byAddr, addr)
	ls.mu.Unlock()
	if tl == nil {
		return
	}
	tl.mu.Lock()
	tl.closed = true
	conns := tl.conns
	tl.conns = nil
	tl.mu.Unlock()
	for c := range conns {
		_ = c.Conn.Close()
	}
}

type trackedListener struct {
	net.Listener

	mu     sync.Mutex
	closed bool
	conns  map[*trackedConn]struct{}
}

func (l *trackedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		_ = c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, l: l}
	l.conns[tc] = struct{}{}
	return tc, nil
}

// trackedConn leaves its listener's set when closed.
type trackedConn struct {
	net.Conn
	l *trackedListener
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}
