package rabbitbus

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/cosmic-horizons/events/broker"
)

// ConnState is a connection state change reported to HookConnection.
type ConnState int

// Connection states.
const (
	// StateConnected: a connection is open (the first one, or a new one
	// after a loss; ConnectionEvent.Reconnects says which).
	StateConnected ConnState = iota
	// StateLost: the connection failed (network, heartbeat timeout, node
	// down, forced close); the client is reconnecting.
	StateLost
	// StateBlocked: the broker blocked publishing on the connection
	// (memory or disk alarm); Publish waits until it is unblocked.
	StateBlocked
	// StateUnblocked: the alarm cleared.
	StateUnblocked
	// StateClosed: Close closed the connection for good.
	StateClosed
)

// String returns the state's name: "connected", "lost", ….
func (s ConnState) String() string {
	switch s {
	case StateConnected:
		return "connected"
	case StateLost:
		return "lost"
	case StateBlocked:
		return "blocked"
	case StateUnblocked:
		return "unblocked"
	case StateClosed:
		return "closed"
	}
	return fmt.Sprintf("ConnState(%d)", int(s))
}

// HookConnection is implemented by hooks (Config.Hooks) that observe the
// state of the client's connections, e.g. to count reconnects in metrics.
// It is called synchronously from the connection manager: return quickly.
type HookConnection interface {
	OnConnection(ev ConnectionEvent)
}

func isConnectionHook(h broker.Hook) bool {
	_, ok := h.(HookConnection)
	return ok
}

// ConnectionEvent is one connection state change.
type ConnectionEvent struct {
	// Role is "publisher" or "subscriber": each has its own connection.
	Role  string
	State ConnState
	// Node is the URL (password redacted) of the node connected to, or
	// of the node whose connection was lost.
	Node string
	// Reconnects counts the connections opened after a loss so far.
	Reconnects int64
	// Err is why the connection was lost (StateLost).
	Err error
	// Reason is the broker's reason for blocking (StateBlocked).
	Reason string
}

// session is one AMQP connection to one node.
type session struct {
	conn     *amqp.Connection
	gen      uint64 // increases with every connection of a manager
	node     string // redacted URL
	idx      int    // index of the node in Config.URLs
	closes   chan *amqp.Error
	lost     chan struct{} // closed when the connection is gone
	lostOnce sync.Once
}

func (s *session) markLost() { s.lostOnce.Do(func() { close(s.lost) }) }

// alive reports whether the connection has not been lost yet.
func (s *session) alive() bool {
	select {
	case <-s.lost:
		return false
	default:
		return true
	}
}

// channel opens a channel; a failure because the connection is gone
// matches errConnLost.
func (s *session) channel() (*amqp.Channel, error) {
	ch, err := s.conn.Channel()
	if err != nil {
		if s.conn.IsClosed() || isConnLoss(err) {
			return nil, fmt.Errorf("%w: open channel: %w", errConnLost, err)
		}
		return nil, fmt.Errorf("rabbitbus: open channel: %w", err)
	}
	return ch, nil
}

// connManager owns the connection of one role: it dials the nodes in turn,
// watches the connection (NotifyClose, NotifyBlocked) and reconnects with
// backoff, to the next node, until it is closed.
type connManager struct {
	cfg   *Config
	role  string
	log   *slog.Logger
	hooks []HookConnection

	mu         sync.Mutex
	sess       *session      // nil while disconnected
	ready      chan struct{} // closed while sess != nil
	unblocked  chan struct{} // closed while the connection is not blocked
	blockedWhy string
	lastErr    error
	lostAt     time.Time
	gen        uint64
	closed     bool

	reconnects atomic.Int64
	done       chan struct{}
	stopDial   context.CancelFunc
	dialCtx    context.Context
	wg         sync.WaitGroup
}

// newConnManager connects to the first node of cfg.URLs that answers,
// trying each once; it fails fast with a *ConnectError when none does.
func newConnManager(ctx context.Context, cfg *Config, role string) (*connManager, error) {
	m := &connManager{
		cfg:       cfg,
		role:      role,
		log:       cfg.Logger.With("component", "rabbitbus", "role", role),
		ready:     make(chan struct{}),
		unblocked: make(chan struct{}),
		done:      make(chan struct{}),
	}
	close(m.unblocked)
	for _, h := range cfg.Hooks {
		if hc, ok := h.(HookConnection); ok {
			m.hooks = append(m.hooks, hc)
		}
	}
	m.dialCtx, m.stopDial = context.WithCancel(context.Background())
	s, err := m.dialRound(ctx, 0)
	if err != nil {
		m.stopDial()
		return nil, err
	}
	m.install(s)
	m.wg.Add(1)
	go m.watch(s)
	return m, nil
}

// dialRound tries every node once, starting at index start.
func (m *connManager) dialRound(ctx context.Context, start int) (*session, error) {
	n := len(m.cfg.URLs)
	cerr := &ConnectError{}
	for i := range n {
		idx := (start + i) % n
		if ctx.Err() != nil {
			cerr.Nodes = append(cerr.Nodes, NodeError{URL: redact(m.cfg.URLs[idx]), Err: ctx.Err()})
			break
		}
		s, err := m.dial(ctx, idx)
		if err == nil {
			return s, nil
		}
		m.log.Debug("rabbitbus: dial failed", "node", redact(m.cfg.URLs[idx]), "error", err)
		cerr.Nodes = append(cerr.Nodes, NodeError{URL: redact(m.cfg.URLs[idx]), Err: dialError(err)})
	}
	return nil, cerr
}

func (m *connManager) dial(ctx context.Context, idx int) (*session, error) {
	rawURL := m.cfg.URLs[idx]
	props := amqp.NewConnectionProperties()
	props.SetClientConnectionName(m.cfg.ConnectionName + " " + m.role)
	timeout := m.cfg.DialTimeout
	var raw net.Conn
	ac := amqp.Config{
		Heartbeat:  m.cfg.Heartbeat,
		Properties: props,
		Locale:     "en_US",
		Dial: func(network, addr string) (net.Conn, error) {
			d := net.Dialer{Timeout: timeout}
			c, err := d.DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			raw = c
			// Bounds the TLS and AMQP handshakes; amqp091 clears it after.
			if err := c.SetDeadline(time.Now().Add(timeout)); err != nil {
				_ = c.Close()
				return nil, err
			}
			return c, nil
		},
	}
	if m.cfg.TLS != nil {
		ac.TLSClientConfig = m.cfg.TLS.Clone()
	}
	if m.cfg.AMQP != nil {
		m.cfg.AMQP(&ac)
	}
	conn, err := amqp.DialConfig(rawURL, ac)
	if err != nil {
		return nil, err
	}
	// amqp091 clears the handshake deadline and arms the heartbeat read
	// deadline only when the next frame arrives: a network that goes
	// silent right after the handshake would never be noticed. Arm it now,
	// as the heartbeater would (1.5 negotiated intervals).
	if hb := conn.Config.Heartbeat; hb > 0 && raw != nil {
		_ = raw.SetReadDeadline(time.Now().Add(3 * hb / 2))
	}
	s := &session{conn: conn, node: redact(rawURL), idx: idx, lost: make(chan struct{})}
	s.closes = conn.NotifyClose(make(chan *amqp.Error, 1))
	return s, nil
}

// install makes s the current session; it closes s and returns false if
// the manager was closed meanwhile.
func (m *connManager) install(s *session) bool {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		_ = s.conn.CloseDeadline(time.Now().Add(m.cfg.DialTimeout))
		s.markLost()
		return false
	}
	m.gen++
	s.gen = m.gen
	m.sess = s
	close(m.ready)
	m.mu.Unlock()

	blocks := s.conn.NotifyBlocked(make(chan amqp.Blocking, 4))
	m.wg.Add(1)
	go m.watchBlocked(s, blocks)

	n := m.reconnects.Load()
	m.log.Info("rabbitbus: connected", "node", s.node, "reconnects", n)
	m.emit(ConnectionEvent{State: StateConnected, Node: s.node, Reconnects: n})
	return true
}

// watch follows the current session and replaces it when it is lost.
func (m *connManager) watch(s *session) {
	defer m.wg.Done()
	for {
		var cause error
		select {
		case err, ok := <-s.closes:
			if ok && err != nil {
				cause = err
			} else {
				cause = errConnLost
			}
		case <-m.done:
			return
		}
		m.markLost(s, cause)
		next := m.reconnect(s.idx + 1)
		if next == nil {
			return
		}
		s = next
	}
}

func (m *connManager) markLost(s *session, cause error) {
	s.markLost()
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	if m.sess == s {
		m.sess = nil
		m.ready = make(chan struct{})
	}
	m.lastErr = cause
	m.lostAt = time.Now()
	m.mu.Unlock()
	m.log.Warn("rabbitbus: connection lost; reconnecting", "node", s.node, "error", cause)
	m.emit(ConnectionEvent{State: StateLost, Node: s.node, Reconnects: m.reconnects.Load(), Err: cause})
}

// reconnect dials round after round, starting with the node at index
// start, until one answers or the manager is closed (nil).
func (m *connManager) reconnect(start int) *session {
	backoff := m.cfg.ReconnectBackoffMin
	for round := 1; ; round++ {
		s, err := m.dialRound(m.dialCtx, start)
		if s != nil {
			m.reconnects.Add(1)
			if !m.install(s) {
				return nil
			}
			return s
		}
		if m.isClosed() {
			return nil
		}
		m.mu.Lock()
		m.lastErr = err
		m.mu.Unlock()
		m.log.Warn("rabbitbus: reconnect failed", "round", round, "retry_in", backoff, "error", err)
		t := time.NewTimer(jitter(backoff))
		select {
		case <-t.C:
		case <-m.done:
			t.Stop()
			return nil
		}
		backoff = min(backoff*2, m.cfg.ReconnectBackoffMax)
	}
}

func (m *connManager) watchBlocked(s *session, blocks <-chan amqp.Blocking) {
	defer m.wg.Done()
	for b := range blocks {
		m.setBlocked(s, b.Active, b.Reason)
	}
	m.setBlocked(s, false, "")
}

func (m *connManager) setBlocked(s *session, active bool, reason string) {
	m.mu.Lock()
	isBlocked := m.blockedWhy != ""
	switch {
	case active && !isBlocked:
		if reason == "" {
			reason = "blocked"
		}
		m.blockedWhy = reason
		m.unblocked = make(chan struct{})
	case !active && isBlocked:
		m.blockedWhy = ""
		close(m.unblocked)
	default:
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	if active {
		m.log.Warn("rabbitbus: broker blocked the connection", "node", s.node, "reason", reason)
		m.emit(ConnectionEvent{State: StateBlocked, Node: s.node, Reconnects: m.reconnects.Load(), Reason: reason})
	} else {
		m.log.Info("rabbitbus: connection unblocked", "node", s.node)
		m.emit(ConnectionEvent{State: StateUnblocked, Node: s.node, Reconnects: m.reconnects.Load()})
	}
}

// current returns the live session, waiting for a reconnect if there is
// none. It fails with broker.ErrClosed after close, or with ctx's error.
func (m *connManager) current(ctx context.Context) (*session, error) {
	for {
		m.mu.Lock()
		if m.closed {
			m.mu.Unlock()
			return nil, broker.ErrClosed
		}
		if s := m.sess; s != nil && s.alive() {
			m.mu.Unlock()
			return s, nil
		}
		ready, last := m.ready, m.lastErr
		m.mu.Unlock()
		select {
		case <-ready:
		case <-m.done:
			return nil, broker.ErrClosed
		case <-ctx.Done():
			if last != nil {
				return nil, fmt.Errorf("rabbitbus: waiting for a connection (last error: %v): %w", last, ctx.Err())
			}
			return nil, fmt.Errorf("rabbitbus: waiting for a connection: %w", ctx.Err())
		}
	}
}

// waitUnblocked returns when the connection is not blocked by the broker.
func (m *connManager) waitUnblocked(ctx context.Context) error {
	m.mu.Lock()
	ch := m.unblocked
	m.mu.Unlock()
	select {
	case <-ch:
		return nil
	default:
	}
	select {
	case <-ch:
		return nil
	case <-m.done:
		return broker.ErrClosed
	case <-ctx.Done():
		return fmt.Errorf("rabbitbus: broker blocked publishing: %w", ctx.Err())
	}
}

func (m *connManager) isClosed() bool {
	select {
	case <-m.done:
		return true
	default:
		return false
	}
}

// connStatus is what Health reports about a connection.
type connStatus struct {
	connected  bool
	node       string
	reconnects int64
	blocked    string
	lastErr    error
	lostAt     time.Time
}

func (m *connManager) status() connStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	st := connStatus{reconnects: m.reconnects.Load(), blocked: m.blockedWhy, lastErr: m.lastErr, lostAt: m.lostAt}
	if m.sess != nil && m.sess.alive() {
		st.connected, st.node = true, m.sess.node
	}
	return st
}

// close closes the connection for good and waits for the manager's
// goroutines. Callers close their channels first (see Subscriber.Close).
func (m *connManager) close() {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		m.wg.Wait()
		return
	}
	m.closed = true
	close(m.done)
	m.stopDial()
	s := m.sess
	m.sess = nil
	m.mu.Unlock()
	if s != nil {
		_ = s.conn.CloseDeadline(time.Now().Add(m.cfg.DialTimeout))
		s.markLost()
		m.log.Info("rabbitbus: connection closed", "node", s.node)
		m.emit(ConnectionEvent{State: StateClosed, Node: s.node, Reconnects: m.reconnects.Load()})
	}
	m.wg.Wait()
}

func (m *connManager) emit(ev ConnectionEvent) {
	ev.Role = m.role
	for _, h := range m.hooks {
		h.OnConnection(ev)
	}
}

// jitter spreads d by ±20%.
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return d
	}
	return time.Duration(float64(d) * (0.8 + 0.4*rand.Float64()))
}
