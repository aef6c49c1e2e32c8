package rabbittest

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"
)

// upstreamDialTimeout bounds the proxy's connect to the broker.
const upstreamDialTimeout = 5 * time.Second

// proxyMode is what a Proxy does with traffic.
type proxyMode int

const (
	modeForward   proxyMode = iota // relay both ways
	modeRefuse                     // reset new connections at once
	modeBlackhole                  // accept new connections, drop all bytes
)

// Proxy is an in-process TCP proxy between AMQP clients and one broker,
// listening on 127.0.0.1, for injecting network faults. Clients reach the
// broker through [Proxy.URL] or [Proxy.Addr]. All methods are safe for
// concurrent use.
type Proxy struct {
	upstream string
	ln       net.Listener
	cancel   context.CancelFunc // stops upstream dials in flight

	mu     sync.Mutex
	mode   proxyMode
	conns  map[*proxyConn]struct{}
	closed bool

	wg sync.WaitGroup // every goroutine of the proxy
}

// proxyConn is one client connection and, once dialled, its upstream twin.
type proxyConn struct {
	client   net.Conn
	upstream net.Conn // nil until dialled; nil forever when black-holed
}

func (c *proxyConn) close() {
	_ = c.client.Close()
	if c.upstream != nil {
		_ = c.upstream.Close()
	}
}

// NewProxy starts a proxy on 127.0.0.1:0 that forwards to upstreamAddr
// (host:port of a broker, e.g. "127.0.0.1:5672") and closes it at t.Cleanup.
// It fails the test if it cannot listen.
func NewProxy(t testing.TB, upstreamAddr string) *Proxy {
	t.Helper()
	p, err := startProxy(upstreamAddr)
	if err != nil {
		t.Fatalf("rabbittest: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

func startProxy(upstreamAddr string) (*Proxy, error) {
	if _, _, err := net.SplitHostPort(upstreamAddr); err != nil {
		return nil, fmt.Errorf("proxy upstream %q: %w", upstreamAddr, err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("proxy listen: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{upstream: upstreamAddr, ln: ln, cancel: cancel, conns: make(map[*proxyConn]struct{})}
	p.wg.Add(1)
	go p.acceptLoop(ctx)
	return p, nil
}

// Addr returns the host:port clients connect to instead of the broker.
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// URL returns base (an AMQP URL of the proxied broker) with its host and
// port replaced by the proxy's, keeping user, password and vhost. It returns
// base unchanged if base is not a URL.
func (p *Proxy) URL(base string) string {
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		return base
	}
	u.Host = p.Addr()
	return u.String()
}

// Cut closes every connection the proxy holds, both the client and the
// broker side, at once, and returns how many it closed. Clients see their
// connection end (EOF) immediately, as after a broker crash or a reset by a
// load balancer. New connections are still accepted.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	cs := make([]*proxyConn, 0, len(p.conns))
	for c := range p.conns {
		cs = append(cs, c)
		delete(p.conns, c)
	}
	p.mu.Unlock()
	for _, c := range cs {
		c.close()
	}
	return len(cs)
}

// Block makes the proxy refuse new connections: each is accepted and
// reset at once, so a dial fails fast, as to a node whose port is closed.
// Connections already open are left alone. Undone by [Proxy.Unblock].
func (p *Proxy) Block() { p.setMode(modeRefuse) }

// Blackhole makes the proxy silently drop every byte, in both directions,
// on the connections it holds and on new ones (accepted, but never
// forwarded), as a network partition does: nothing fails until a timeout
// or a missed heartbeat notices. Undone by [Proxy.Unblock]; bytes dropped
// meanwhile are lost, so a client that lived through it sees a corrupt
// stream and should reconnect.
func (p *Proxy) Blackhole() { p.setMode(modeBlackhole) }

// Unblock undoes [Proxy.Block] and [Proxy.Blackhole]: new connections are
// forwarded to the broker again, and so are the bytes of open connections.
// Connections accepted while black-holed stay silent until they are closed.
func (p *Proxy) Unblock() { p.setMode(modeForward) }

// Connections returns how many client connections the proxy holds open now.
func (p *Proxy) Connections() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Close stops listening, closes every connection and waits for the proxy's
// goroutines to end. It is idempotent; NewProxy calls it at t.Cleanup.
func (p *Proxy) Close() {
	p.mu.Lock()
	already := p.closed
	p.closed = true
	p.mu.Unlock()
	if !already {
		_ = p.ln.Close()
		p.cancel()
		p.Cut()
	}
	p.wg.Wait()
}

func (p *Proxy) setMode(m proxyMode) {
	p.mu.Lock()
	p.mode = m
	p.mu.Unlock()
}

func (p *Proxy) currentMode() proxyMode {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.mode
}

// track registers c; it returns false (and closes c) if the proxy is closed.
func (p *Proxy) track(c *proxyConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		c.close()
		return false
	}
	p.conns[c] = struct{}{}
	return true
}

// forget unregisters c and closes it.
func (p *Proxy) forget(c *proxyConn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	c.close()
}

func (p *Proxy) acceptLoop(ctx context.Context) {
	defer p.wg.Done()
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return // listener closed by Close
		}
		switch p.currentMode() {
		case modeRefuse:
			if tc, ok := client.(*net.TCPConn); ok {
				_ = tc.SetLinger(0) // RST, not FIN: "connection reset by peer"
			}
			_ = client.Close()
		case modeBlackhole:
			c := &proxyConn{client: client}
			if p.track(c) {
				p.wg.Add(1)
				go p.swallow(c)
			}
		default:
			c := &proxyConn{client: client}
			if p.track(c) {
				p.wg.Add(1)
				go p.forward(ctx, c)
			}
		}
	}
}

// swallow reads and drops what a black-holed client sends until it closes.
func (p *Proxy) swallow(c *proxyConn) {
	defer p.wg.Done()
	_, _ = io.Copy(io.Discard, c.client)
	p.forget(c)
}

// forward dials the broker for c and relays both ways until either side
// closes, then closes both.
func (p *Proxy) forward(ctx context.Context, c *proxyConn) {
	defer p.wg.Done()
	d := net.Dialer{Timeout: upstreamDialTimeout}
	up, err := d.DialContext(ctx, "tcp", p.upstream)
	if err != nil {
		p.forget(c)
		return
	}
	p.mu.Lock()
	_, live := p.conns[c] // false if Cut or Close ran during the dial
	if live {
		c.upstream = up
	}
	p.mu.Unlock()
	if !live {
		_ = up.Close()
		_ = c.client.Close()
		return
	}
	done := make(chan struct{}, 2)
	relay := func(dst, src net.Conn) {
		p.copy(dst, src)
		done <- struct{}{}
	}
	go relay(up, c.client)
	go relay(c.client, up)
	<-done
	if p.currentMode() == modeBlackhole {
		// A partition hides the far end closing too: keep the client side
		// open and silent until the client, Cut or Close ends it.
		_ = up.Close()
		<-done
		p.forget(c)
		return
	}
	p.forget(c) // closing both ends ends the other relay
	<-done
}

// copy relays src to dst, dropping the bytes while the proxy black-holes.
func (p *Proxy) copy(dst, src net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 && p.currentMode() != modeBlackhole {
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return // EOF, or the connection was closed by Cut, Close or the peer
		}
	}
}
