package rabbittest

import (
	"bytes"
	"context"
	"crypto/rand"
	"net"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// newBrokerProxy returns a fixture and a proxy in front of its broker.
func newBrokerProxy(t *testing.T) (*Fixture, *Proxy) {
	t.Helper()
	f := New(t)
	addr, err := hostPort(f.URL())
	if err != nil {
		t.Fatal(err)
	}
	return f, NewProxy(t, addr)
}

// TestProxyRelaysIntact: AMQP through the proxy works, and 200 messages of
// 64 KiB of random bytes come back identical and in order.
func TestProxyRelaysIntact(t *testing.T) {
	f, p := newBrokerProxy(t)
	conn := mustDial(t, p.URL(f.URL()), amqp.Config{})
	if got := p.Connections(); got != 1 {
		t.Fatalf("Connections() = %d, want 1", got)
	}
	q := f.Name("relay")
	ch := mustChannel(t, conn)
	if _, err := ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
		t.Fatal(err)
	}
	const n = 200
	bodies := make([][]byte, n)
	for i := range bodies {
		bodies[i] = make([]byte, 64<<10)
		_, _ = rand.Read(bodies[i])
	}
	pub := mustChannel(t, conn)
	if err := pub.Confirm(false); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i, b := range bodies {
		dc, err := pub.PublishWithDeferredConfirmWithContext(ctx, "", q, true, false, amqp.Publishing{Body: b})
		if err != nil {
			t.Fatalf("publish %d: %v", i, err)
		}
		if ok, err := dc.WaitContext(ctx); !ok || err != nil {
			t.Fatalf("confirm %d: ok=%v err=%v", i, ok, err)
		}
	}
	deliveries, err := ch.Consume(q, "", true, false, false, false, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		select {
		case d := <-deliveries:
			if !bytes.Equal(d.Body, bodies[i]) {
				t.Fatalf("message %d differs after the round trip", i)
			}
		case <-ctx.Done():
			t.Fatalf("received %d of %d messages", i, n)
		}
	}
}

// TestProxyCutFiresNotifyClose: Cut drops every connection at once;
// amqp091's NotifyClose reports an error promptly; the proxy then holds no
// connection and accepts new ones.
func TestProxyCutFiresNotifyClose(t *testing.T) {
	f, p := newBrokerProxy(t)
	url := p.URL(f.URL())
	conns := []*amqp.Connection{mustDial(t, url, amqp.Config{}), mustDial(t, url, amqp.Config{})}
	var closed []chan *amqp.Error
	for _, c := range conns {
		closed = append(closed, c.NotifyClose(make(chan *amqp.Error, 1)))
	}
	start := time.Now()
	if n := p.Cut(); n != 2 {
		t.Fatalf("Cut() = %d, want 2", n)
	}
	for i, ch := range closed {
		select {
		case err := <-ch:
			if err == nil {
				t.Fatalf("connection %d: NotifyClose delivered nil, want the abnormal close error", i)
			}
			t.Logf("connection %d closed after %v: %v", i, time.Since(start).Round(time.Microsecond), err)
		case <-time.After(5 * time.Second):
			t.Fatalf("connection %d: NotifyClose did not fire within 5s of Cut", i)
		}
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("NotifyClose fired %v after Cut, want promptly (< 1s)", elapsed)
	}
	waitFor(t, 5*time.Second, "no proxied connections", func() bool { return p.Connections() == 0 })
	again := mustDial(t, url, amqp.Config{})
	mustChannel(t, again)
	if got := p.Connections(); got != 1 {
		t.Fatalf("Connections() after reconnect = %d, want 1", got)
	}
}

// TestProxyBlock: while blocked, new connections fail fast and open ones
// keep working; after Unblock, connecting works again.
func TestProxyBlock(t *testing.T) {
	f, p := newBrokerProxy(t)
	url := p.URL(f.URL())
	old := mustDial(t, url, amqp.Config{})
	p.Block()
	start := time.Now()
	c, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(5 * time.Second)})
	if err == nil {
		_ = c.Close()
		t.Fatal("dial through a blocked proxy succeeded")
	}
	if elapsed := time.Since(start); elapsed > time.Second {
		t.Errorf("dial through a blocked proxy failed after %v, want fast", elapsed)
	}
	t.Logf("blocked dial: %v", err)
	q := f.Name("block")
	ch := mustChannel(t, old)
	if _, err := ch.QueueDeclare(q, false, false, false, false, nil); err != nil {
		t.Fatalf("open connection broke while blocked: %v", err)
	}
	p.Unblock()
	mustChannel(t, mustDial(t, url, amqp.Config{}))
}

// TestProxyBlackhole: while black-holed, a new connection hangs until its
// handshake timeout, and an open connection is only found dead by missed
// heartbeats (1s heartbeat: NotifyClose within a few seconds, not at once),
// and the broker closing its side is not passed on to the client.
func TestProxyBlackhole(t *testing.T) {
	f, p := newBrokerProxy(t)
	url := p.URL(f.URL())
	old := mustDial(t, url, amqp.Config{Heartbeat: time.Second})
	closed := old.NotifyClose(make(chan *amqp.Error, 1))
	// amqp091 clears the read deadline when the handshake completes and arms
	// the heartbeat deadline only when the next frame arrives: a connection
	// that is black-holed before receiving anything after open-ok never
	// notices. Receive a frame (channel.open-ok) first.
	mustChannel(t, old)
	start := time.Now()
	p.Blackhole()

	const handshake = 500 * time.Millisecond
	dialStart := time.Now()
	c, err := amqp.DialConfig(url, amqp.Config{Dial: amqp.DefaultDial(handshake)})
	if err == nil {
		_ = c.Close()
		t.Fatal("dial through a black hole succeeded")
	}
	if elapsed := time.Since(dialStart); elapsed < handshake-50*time.Millisecond {
		t.Errorf("dial failed after %v, before its %v timeout: the black hole answered (%v)", elapsed, handshake, err)
	}
	if !strings.Contains(err.Error(), "timeout") {
		t.Errorf("dial error %q, want a handshake timeout", err)
	}
	select {
	case e := <-closed:
		elapsed := time.Since(start)
		if e == nil {
			t.Fatal("NotifyClose delivered nil")
		}
		if elapsed < time.Second {
			t.Errorf("connection declared dead after %v, before one heartbeat interval", elapsed)
		}
		t.Logf("heartbeat noticed the black hole after %v: %v", elapsed.Round(time.Millisecond), e)
	case <-time.After(15 * time.Second):
		t.Fatal("the open connection was not declared dead within 15s of the black hole")
	}
	p.Unblock()
	mustChannel(t, mustDial(t, url, amqp.Config{}))
}

// TestProxyClose: Close is idempotent, drops every connection and stops
// listening.
func TestProxyClose(t *testing.T) {
	f, p := newBrokerProxy(t)
	conn := mustDial(t, p.URL(f.URL()), amqp.Config{})
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	p.Close()
	p.Close()
	select {
	case <-closed:
	case <-time.After(5 * time.Second):
		t.Fatal("connection still open 5s after Close")
	}
	if got := p.Connections(); got != 0 {
		t.Fatalf("Connections() after Close = %d", got)
	}
	if c, err := net.DialTimeout("tcp", p.Addr(), time.Second); err == nil {
		_ = c.Close()
		t.Fatal("the proxy still accepts connections after Close")
	}
}

func TestProxyURL(t *testing.T) {
	p := NewProxy(t, "127.0.0.1:5672")
	got := p.URL("amqp://u:p@broker.example:5672/vh")
	want := "amqp://u:p@" + p.Addr() + "/vh"
	if got != want {
		t.Fatalf("URL = %q, want %q", got, want)
	}
}
