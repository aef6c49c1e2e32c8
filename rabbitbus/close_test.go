package rabbitbus_test

import (
	"errors"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/rabbitbus"
	"github.com/cosmic-horizons/events/testkit"
	"github.com/cosmic-horizons/events/testkit/rabbittest"
)

// writeCounter counts the writes on the connections it dials: a write
// after the proxy went silent is a publish on its way to nowhere.
type writeCounter struct{ n atomic.Int64 }

// wrap is a Config.AMQP hook that wraps the dialled connections.
func (w *writeCounter) wrap(cfg *amqp.Config) {
	dial := cfg.Dial
	cfg.Dial = func(network, addr string) (net.Conn, error) {
		c, err := dial(network, addr)
		if err != nil {
			return nil, err
		}
		return &countingConn{Conn: c, n: &w.n}, nil
	}
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// TestCloseGivesUpAfterCloseTimeout: a message is published on a
// connection that has gone silent (a black-holed network, with heartbeats
// too slow to notice within the test), so its confirm never comes. Close
// stops waiting after Config.CloseTimeout: it returns (reporting that it
// gave up, after closing the connection within DialTimeout), and the
// waiting Publish fails with broker.ErrClosed instead of waiting for its
// ctx.
func TestCloseGivesUpAfterCloseTimeout(t *testing.T) {
	e := newEnv(t)
	proxy := rabbittest.NewProxy(t, hostPort(t, e.url))
	var writes writeCounter
	cfg := rabbitbus.Config{
		URLs: []string{proxy.URL(e.url)}, Heartbeat: time.Minute, DialTimeout: time.Second,
		PublishChannels: 1, CloseTimeout: time.Second, Logger: testLogger(t), AMQP: writes.wrap,
	}
	ctx := deadline(t, time.Minute)
	p, err := rabbitbus.NewPublisher(ctx, cfg)
	if err != nil {
		t.Fatalf("NewPublisher: %v", err)
	}
	t.Cleanup(func() { _ = p.Close() })
	topic := e.f.Name("closing")
	e.declareGroup(t, broker.Subscription{Topic: topic, Group: "g"})
	if err := p.Publish(ctx, &broker.Message{Topic: topic, Key: "first"}); err != nil {
		t.Fatalf("Publish before the network went silent: %v", err)
	}

	proxy.Blackhole()
	before := writes.n.Load()
	published := make(chan error, 1)
	go func() { published <- p.Publish(ctx, &broker.Message{Topic: topic, Key: "held"}) }()
	testkit.Eventually(ctx, t, "the held message written to the silent connection", func() bool { return writes.n.Load() > before })

	start := time.Now()
	closed := make(chan error, 1)
	go func() { closed <- p.Close() }()
	bound := cfg.CloseTimeout + cfg.DialTimeout + 5*time.Second
	select {
	case err := <-closed:
		took := time.Since(start)
		t.Logf("Close returned after %v: %v", took, err)
		if took < cfg.CloseTimeout {
			t.Errorf("Close returned after %v, before CloseTimeout %v, with a confirm outstanding", took, cfg.CloseTimeout)
		}
		if err == nil || !strings.Contains(err.Error(), "CloseTimeout") {
			t.Errorf("Close = %v, want an error saying it gave up after CloseTimeout", err)
		}
	case <-time.After(bound):
		t.Fatalf("Close still blocked %v after it was called (CloseTimeout %v, DialTimeout %v)", bound, cfg.CloseTimeout, cfg.DialTimeout)
	}
	select {
	case err := <-published:
		var pe *broker.PublishError
		if !errors.Is(err, broker.ErrClosed) || !errors.As(err, &pe) || len(pe.Failed) != 1 || pe.Failed[0].Index != 0 {
			t.Fatalf("the waiting Publish = %v, want a *broker.PublishError naming message #0, matching broker.ErrClosed", err)
		}
		t.Logf("waiting Publish: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting Publish did not return after Close")
	}
	if err := p.Publish(ctx, &broker.Message{Topic: topic, Key: "late"}); !errors.Is(err, broker.ErrClosed) {
		t.Errorf("Publish after Close = %v, want broker.ErrClosed", err)
	}
}

// TestConfigValidateRefusesNegativeCloseTimeout: Close must be bounded.
func TestConfigValidateRefusesNegativeCloseTimeout(t *testing.T) {
	err := rabbitbus.Config{URLs: []string{"amqp://guest:guest@127.0.0.1:5672/"}, CloseTimeout: -time.Second}.Validate()
	if err == nil || !strings.Contains(err.Error(), "CloseTimeout") {
		t.Errorf("negative CloseTimeout: Validate = %v, want it refused", err)
	}
}
