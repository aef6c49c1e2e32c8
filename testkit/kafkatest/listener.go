package kafkatest

import (
	"net"
	"sync"
)

// listeners creates the brokers' listeners (through kfake.ListenFn) and
// remembers them by address, so that the connections a removed broker had
// accepted can be closed: kfake's RemoveNode only closes the listener, which
// would leave clients talking to a broker that no longer exists.
type listeners struct {
	mu     sync.Mutex
	byAddr map[string]*trackedListener
}

func newListeners() *listeners {
	return &listeners{byAddr: make(map[string]*trackedListener)}
}

// listen has the signature of net.Listen, for kfake.ListenFn.
func (ls *listeners) listen(network, address string) (net.Listener, error) {
	ln, err := net.Listen(network, address)
	if err != nil {
		return nil, err
	}
	tl := &trackedListener{Listener: ln, conns: make(map[*trackedConn]struct{})}
	ls.mu.Lock()
	ls.byAddr[ln.Addr().String()] = tl
	ls.mu.Unlock()
	return tl, nil
}

// closeConns closes every connection accepted on addr and makes the
// listener refuse any it accepts later. It reports whether addr was known.
func (ls *listeners) closeConns(addr string) bool {
	ls.mu.Lock()
	tl, ok := ls.byAddr[addr]
	delete(ls.byAddr, addr)
	ls.mu.Unlock()
	if ok {
		tl.closeConns()
	}
	return ok
}

type trackedListener struct {
	net.Listener

	mu     sync.Mutex
	closed bool // set by closeConns; later accepts are refused
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
		c.Close()
		return nil, net.ErrClosed
	}
	tc := &trackedConn{Conn: c, l: l}
	l.conns[tc] = struct{}{}
	return tc, nil
}

func (l *trackedListener) closeConns() {
	l.mu.Lock()
	l.closed = true
	conns := l.conns
	l.conns = nil
	l.mu.Unlock()
	for c := range conns {
		c.Conn.Close()
	}
}

func (l *trackedListener) forget(c *trackedConn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

// trackedConn removes itself from its listener's set when closed.
type trackedConn struct {
	net.Conn
	l *trackedListener
}

func (c *trackedConn) Close() error {
	c.l.forget(c)
	return c.Conn.Close()
}
