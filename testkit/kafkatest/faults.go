package kafkatest

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// errDropConnection is what the DropConnections control returns: a control
// function that returns an error makes kfake close the client connection
// instead of answering.
var errDropConnection = errors.New("kafkatest: connection dropped by DropConnections")

// Fault is a handle to a fault installed by [Cluster.FailNext],
// [Cluster.FailNextTopic], [Cluster.DropConnections] or [Cluster.Delay]. A
// fault uninstalls itself once it has affected its n requests. Its methods
// are safe for concurrent use.
type Fault struct {
	kf  *kfake.FaultHandle // FailNext, FailNextTopic
	ctl *control           // DropConnections, Delay, and faults of n == 0
}

// Hits returns how many requests the fault has affected so far.
func (f *Fault) Hits() int {
	if f.kf != nil {
		return f.kf.Hits()
	}
	return f.ctl.hitCount()
}

// Wait blocks until the fault has affected at least n requests, or until ctx
// is done, in which case it returns ctx's error.
func (f *Fault) Wait(ctx context.Context, n int) error {
	if f.kf != nil {
		return f.kf.Wait(ctx, n)
	}
	return f.ctl.wait(ctx, n)
}

// Remove uninstalls the fault: requests that have not reached it yet are
// served normally. A request already being delayed finishes its delay.
// Remove may be called more than once.
func (f *Fault) Remove() {
	if f.kf != nil {
		f.kf.Remove()
		return
	}
	f.ctl.remove()
}

// FailNext answers the next n requests of kind key with the Kafka error err,
// in place of the real answer; n < 0 fails every such request until
// [Fault.Remove], n == 0 fails none. A nil err means
// UNKNOWN_SERVER_ERROR.
//
// The error goes where a real broker would put it: into every partition of a
// Produce, Fetch or ListOffsets request (a produce answered this way is a
// normal response with a per-partition error code, which clients retry if
// the code is retriable), into every topic or group of requests that carry
// those, and into the top-level error code of requests that carry nothing to
// select on (ApiVersions, DescribeCluster, ListGroups, ...). A request that
// carries several partitions counts once.
//
// The faulted request is not applied, with two exceptions that are applied
// and then answered with the error, like a broker that wrote the data but
// timed out waiting for replicas: Produce with kerr.RequestTimedOut or
// kerr.NotEnoughReplicasAfterAppend, and kerr.RequestTimedOut on the
// requests a real broker can time out after applying (OffsetCommit,
// DeleteRecords, CreateTopics, AlterConfigs and the other admin writes).
// The produce case is the one an idempotent producer's retry must not turn
// into a duplicate.
//
// A request dropped by [Cluster.DropConnections] never reaches the fault and
// does not count towards n.
func (c *Cluster) FailNext(key kmsg.Key, n int, err *kerr.Error) *Fault {
	return c.fail(kfake.Fault{Keys: []kmsg.Key{key}}, n, err)
}

// FailNextTopic is [Cluster.FailNext] restricted to the partitions of one
// topic: requests of kind key that do not name topic are served normally
// and do not count towards n, and within a matching request only topic's
// partitions get err.
func (c *Cluster) FailNextTopic(key kmsg.Key, topic string, n int, err *kerr.Error) *Fault {
	return c.fail(kfake.Fault{Keys: []kmsg.Key{key}, Topic: topic}, n, err)
}

func (c *Cluster) fail(f kfake.Fault, n int, err *kerr.Error) *Fault {
	if n == 0 {
		return &Fault{ctl: newControl(0)}
	}
	f.Err = err
	f.Count = n
	if n < 0 {
		f.Count = -1 // kfake reads 0 as one, -1 as until removed
	}
	return &Fault{kf: c.kf.Fault(f)}
}

// DropConnections closes the client connection that carries each of the
// next n requests of kind key, instead of answering it; n < 0 drops every
// such request until [Fault.Remove], n == 0 none. The request is not
// applied, and requests pipelined behind it on the same connection are
// lost with it. Clients see a broken connection (EOF or reset) and must
// reconnect.
//
// DropConnections and [Cluster.Delay] act before [Cluster.FailNext] faults
// are consulted: a dropped request never reaches them, and a delayed one
// reaches them after its delay.
func (c *Cluster) DropConnections(key kmsg.Key, n int) *Fault {
	ctl := newControl(n)
	if n != 0 {
		c.kf.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
			if !ctl.take() {
				c.kf.DropControl()
				return nil, nil, false
			}
			c.kf.KeepControl()
			return nil, errDropConnection, true
		})
	}
	return &Fault{ctl: ctl}
}

// Delay holds each of the next n requests of kind key for d before the
// cluster serves it normally; n < 0 delays every such request until
// [Fault.Remove], n == 0 none. Kafka serves a connection's requests in
// order, so requests sent behind a delayed one on the same connection wait
// too; requests on other connections are not held up. [Cluster.Close]
// drops delayed requests unanswered.
func (c *Cluster) Delay(key kmsg.Key, d time.Duration, n int) *Fault {
	ctl := newControl(n)
	if n != 0 {
		c.kf.ControlKey(int16(key), func(kmsg.Request) (kmsg.Response, error, bool) {
			if !ctl.take() {
				c.kf.DropControl()
				return nil, nil, false
			}
			c.kf.SleepControl(func() {
				t := time.NewTimer(d)
				defer t.Stop()
				select {
				case <-t.C:
				case <-c.done:
				}
			})
			// Not handled: kfake now serves the request as usual.
			return nil, nil, false
		})
	}
	return &Fault{ctl: ctl}
}

// control counts the requests a DropConnections or Delay control function
// takes.
type control struct {
	mu      sync.Mutex
	left    int // requests still to take; < 0 means unlimited
	hits    int
	removed bool
	hit     chan struct{} // closed and replaced on every hit
}

func newControl(n int) *control {
	if n < 0 {
		n = -1
	}
	return &control{left: n, hit: make(chan struct{})}
}

// take reports whether the current request is one the control acts on, and
// counts it.
func (c *control) take() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.removed || c.left == 0 {
		return false
	}
	if c.left > 0 {
		c.left--
	}
	c.hits++
	close(c.hit)
	c.hit = make(chan struct{})
	return true
}

func (c *control) hitCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hits
}

func (c *control) wait(ctx context.Context, n int) error {
	for {
		c.mu.Lock()
		hits, hit := c.hits, c.hit
		c.mu.Unlock()
		if hits >= n {
			return nil
		}
		select {
		case <-hit:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

func (c *control) remove() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.removed = true
}
