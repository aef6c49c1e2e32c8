package kafkatest_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// fakeTB records what NewCluster does with its testing.TB.
type fakeTB struct {
	testing.TB // nil: only the methods below may be called
	fatal      string
	cleanups   []func()
}

func (f *fakeTB) Helper()           {}
func (f *fakeTB) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.fatal = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// newClusterWith runs NewCluster on a fakeTB in its own goroutine, so that
// Fatalf can end it, and reports the fakeTB.
func newClusterWith(opts ...kafkatest.Option) *fakeTB {
	tb := &fakeTB{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		kafkatest.NewCluster(tb, opts...)
	}()
	<-done
	for _, fn := range tb.cleanups {
		fn()
	}
	return tb
}

// TestNewClusterFails proves that invalid options and failed topic
// creation fail the test instead of returning a half-made cluster.
func TestNewClusterFails(t *testing.T) {
	tests := []struct {
		name string
		opts []kafkatest.Option
	}{
		{"NoBrokers", []kafkatest.Option{kafkatest.Brokers(0)}},
		{"EmptyTopicName", []kafkatest.Option{kafkatest.Topic("", 1, nil)}},
		{"NoPartitions", []kafkatest.Option{kafkatest.Topic("a", 0, nil)}},
		{"NoSessionTimeout", []kafkatest.Option{kafkatest.GroupMinSessionTimeout(0)}},
		{"InvalidTopicName", []kafkatest.Option{kafkatest.Topic("not a valid name!", 1, nil)}},
		{"LongTopicName", []kafkatest.Option{kafkatest.Topic(strings.Repeat("a", 250), 1, nil)}},
		// kfake refuses names that differ only in '.' and '_' (they
		// collide in Kafka's metric names): the CreateTopics error path.
		{"CollidingTopicNames", []kafkatest.Option{kafkatest.Topic("a.b", 1, nil), kafkatest.Topic("a_b", 1, nil)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tb := newClusterWith(tt.opts...)
			if tb.fatal == "" {
				t.Fatal("NewCluster did not fail the test")
			}
			t.Logf("failed with: %s", tb.fatal)
		})
	}
	if tb := newClusterWith(kafkatest.Brokers(1), kafkatest.Topic("ok", 1, nil)); tb.fatal != "" {
		t.Fatalf("valid options failed the test: %s", tb.fatal)
	}
}

// apiVersionsFrame is an ApiVersions v0 request as it goes on the wire.
func apiVersionsFrame() []byte {
	req := kmsg.NewPtrApiVersionsRequest()
	return kmsg.NewRequestFormatter(kmsg.FormatterClientID("raw")).AppendRequest(nil, req, 1)
}

// roundTrip sends one ApiVersions request on conn and reads the response.
func roundTrip(conn net.Conn) error {
	if _, err := conn.Write(apiVersionsFrame()); err != nil {
		return err
	}
	var size [4]byte
	if _, err := io.ReadFull(conn, size[:]); err != nil {
		return err
	}
	_, err := io.CopyN(io.Discard, conn, int64(binary.BigEndian.Uint32(size[:])))
	return err
}

// expectClosed fails the test unless the peer closed conn: a read must
// end in an error other than a timeout.
func expectClosed(t *testing.T, conn net.Conn) {
	t.Helper()
	conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := conn.Read(make([]byte, 1))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open (read: %v)", err)
	}
}

// TestRemoveBrokerClosesConnections proves that a removed broker stops
// talking: connections it had accepted are closed and new ones refused,
// while the other brokers keep serving.
func TestRemoveBrokerClosesConnections(t *testing.T) {
	c := kafkatest.NewCluster(t)
	cl := newClient(t, c)
	addrOf := func(id int32) string {
		b, err := cl.Broker(id)
		if err != nil {
			t.Fatalf("broker %d: %v", id, err)
		}
		return b.Addr()
	}
	victim, other := addrOf(1), addrOf(2)

	dial := func(addr string) net.Conn {
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %s: %v", addr, err)
		}
		t.Cleanup(func() { conn.Close() })
		if err := roundTrip(conn); err != nil {
			t.Fatalf("ApiVersions on %s: %v", addr, err)
		}
		return conn
	}
	toVictim, toOther := dial(victim), dial(other)

	if err := c.RemoveBroker(1); err != nil {
		t.Fatalf("remove broker: %v", err)
	}
	expectClosed(t, toVictim)
	if conn, err := net.Dial("tcp", victim); err == nil {
		conn.Close()
		t.Errorf("removed broker %s still accepts connections", victim)
	}
	if err := roundTrip(toOther); err != nil {
		t.Errorf("surviving broker stopped serving: %v", err)
	}
}

// TestCloseStopsEverything proves that Close wakes a delayed request,
// closes client connections, and leaves no goroutine of kfake, of the
// franz-go client used for setup, or of this package behind.
func TestCloseStopsEverything(t *testing.T) {
	c := kafkatest.NewCluster(t, kafkatest.Topic("a", 1, nil))
	f := c.Delay(kmsg.ApiVersions, time.Hour, 1)
	conn, err := net.Dial("tcp", c.Addrs()[0])
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	defer conn.Close()
	if _, err := conn.Write(apiVersionsFrame()); err != nil {
		t.Fatalf("write: %v", err)
	}
	if err := f.Wait(timeoutCtx(t), 1); err != nil {
		t.Fatalf("request never delayed: %v", err)
	}

	c.Close()
	expectClosed(t, conn)
	var leftover string
	waitFor(t, "goroutines to stop", func() bool {
		leftover = ourGoroutines()
		return leftover == ""
	})
}

// ourGoroutines returns the stacks of goroutines running kfake, kgo or
// this package's code.
func ourGoroutines() string {
	buf := make([]byte, 1<<20)
	buf = buf[:runtime.Stack(buf, true)]
	var ours []string
	for g := range bytes.SplitSeq(buf, []byte("\n\n")) {
		s := string(g)
		if strings.Contains(s, "franz-go/pkg/kfake") || strings.Contains(s, "franz-go/pkg/kgo") ||
			strings.Contains(s, "testkit/kafkatest.") {
			ours = append(ours, s)
		}
	}
	return strings.Join(ours, "\n\n")
}
