package dashboard

import (
	"context"
	"embed"
	"encoding/json"
	"errors"
	"io/fs"
	"net/http"
	"sort"
	"time"

	"github.com/coder/websocket"
)

//go:embed static
var staticFiles embed.FS

// contentSecurityPolicy allows only the page's own files and its own
// WebSocket and API.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Handler serves the page, the WebSocket and the orchestrator's API (see
// the package documentation).
func (d *Dashboard) Handler() http.Handler {
	static, err := fs.Sub(staticFiles, "static")
	if err != nil {
		panic(err) // the embedded tree always has it
	}
	files := http.FileServerFS(static)
	mux := http.NewServeMux()
	page := func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	}
	mux.HandleFunc("GET /{$}", page)
	mux.HandleFunc("GET /static/", func(w http.ResponseWriter, r *http.Request) {
		http.StripPrefix("/static", http.HandlerFunc(page)).ServeHTTP(w, r)
	})
	mux.HandleFunc("GET /ws", d.serveWS)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	if d.cfg.JobsAPI != nil {
		mux.Handle("/api/", http.StripPrefix("/api", d.cfg.JobsAPI))
	} else {
		mux.HandleFunc("/api/", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"error":"this dashboard has no orchestrator API configured"}` + "\n"))
		})
	}
	return mux
}

// message is what the WebSocket sends, as JSON text.
type message struct {
	// Type is "snapshot" (Jobs is every job; replace your state) or
	// "update" (Jobs changed, Removed were forgotten).
	Type          string         `json:"type"`
	Jobs          []JobState     `json:"jobs"`
	Removed       []string       `json:"removed,omitempty"`
	Notifications []Notification `json:"notifications,omitempty"`
	// ServerTime lets the page measure running jobs against the server's
	// clock.
	ServerTime time.Time `json:"server_time"`
}

// client is one open WebSocket. Its fields other than wake and cancel are
// guarded by Dashboard.mu.
type client struct {
	dirty  map[string]struct{}
	notes  []Notification
	wake   chan struct{}
	cancel context.CancelFunc // ends the connection
}

func (c *client) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

func (d *Dashboard) serveWS(w http.ResponseWriter, r *http.Request) {
	if !d.admit() {
		http.Error(w, "dashboard: too many connections or shutting down", http.StatusServiceUnavailable)
		return
	}
	// Accept checks that the Origin is this host: other sites cannot
	// open the socket from a visitor's browser.
	conn, err := websocket.Accept(w, r, nil)
	if err != nil {
		d.log.Debug("websocket handshake failed", "remote", r.RemoteAddr, "error", err)
		return
	}
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	c := &client{dirty: map[string]struct{}{}, wake: make(chan struct{}, 1), cancel: cancel}
	d.mu.Lock()
	if d.closed || len(d.clients) >= d.cfg.MaxClients {
		d.mu.Unlock()
		_ = conn.Close(websocket.StatusTryAgainLater, "too many connections or shutting down")
		return
	}
	snap := message{Type: "snapshot", Jobs: d.snapshotLocked(), ServerTime: d.cfg.Clock().UTC()}
	d.clients[c] = struct{}{}
	d.conns.Add(1)
	d.mu.Unlock()
	defer d.conns.Done()

	// CloseRead's context ends when the browser goes (it must not end
	// with ctx: that would cut the socket before the close handshake).
	peer := conn.CloseRead(context.WithoutCancel(r.Context()))
	reason := d.stream(ctx, peer, conn, c, snap)

	d.mu.Lock()
	delete(d.clients, c)
	d.mu.Unlock()
	d.log.Debug("websocket closed", "remote", r.RemoteAddr, "reason", reason)
	// No closing handshake, also when the dashboard stops: Close after
	// CloseRead waits out a 5 s timeout in coder/websocket v1.8.15 (the
	// reader holds the lock the handshake needs). The page reconnects on
	// any close, so an abrupt one costs nothing.
	_ = conn.CloseNow()
}

// admit reports whether a new WebSocket may be opened.
func (d *Dashboard) admit() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return !d.closed && len(d.clients) < d.cfg.MaxClients
}

// stream writes the snapshot, then coalesced updates, until ctx ends (the
// dashboard stops or drops the socket), peer ends (the browser went) or a
// write fails; it returns why it stopped.
func (d *Dashboard) stream(ctx, peer context.Context, conn *websocket.Conn, c *client, snap message) error {
	if err := d.write(ctx, conn, snap); err != nil {
		return err
	}
	ping := time.NewTicker(d.cfg.PingInterval)
	defer ping.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-peer.Done():
			return errors.New("the browser closed the connection")
		case <-ping.C:
			pctx, cancel := context.WithTimeout(ctx, d.cfg.WriteTimeout)
			err := conn.Ping(pctx)
			cancel()
			if err != nil {
				return err
			}
		case <-c.wake:
			// Gather what else changes in the next moment into the
			// same message.
			t := time.NewTimer(d.cfg.FlushInterval)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-peer.Done():
				t.Stop()
				return errors.New("the browser closed the connection")
			case <-t.C:
			}
			if msg, ok := d.take(c); ok {
				if err := d.write(ctx, conn, msg); err != nil {
					return err
				}
			}
		}
	}
}

// take returns the update pending for c and clears it.
func (d *Dashboard) take(c *client) (message, bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	msg := message{Type: "update", Jobs: []JobState{}, Notifications: c.notes, ServerTime: d.cfg.Clock().UTC()}
	for id := range c.dirty {
		if j, ok := d.jobs[id]; ok {
			msg.Jobs = append(msg.Jobs, *j)
		} else {
			msg.Removed = append(msg.Removed, id)
		}
	}
	c.dirty, c.notes = map[string]struct{}{}, nil
	sort.Slice(msg.Jobs, func(i, k int) bool { return msg.Jobs[i].JobID > msg.Jobs[k].JobID })
	sort.Strings(msg.Removed)
	return msg, len(msg.Jobs)+len(msg.Removed)+len(msg.Notifications) > 0
}

func (d *Dashboard) write(ctx context.Context, conn *websocket.Conn, msg message) error {
	b, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	wctx, cancel := context.WithTimeout(ctx, d.cfg.WriteTimeout)
	defer cancel()
	return conn.Write(wctx, websocket.MessageText, b)
}
