package dashboard_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coder/websocket"
	"go.uber.org/goleak"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/dashboard"
	"github.com/cosmic-horizons/events/testkit"
)

const deadline = 30 * time.Second

// msg mirrors what the WebSocket sends.
type msg struct {
	Type          string                   `json:"type"`
	Jobs          []dashboard.JobState     `json:"jobs"`
	Removed       []string                 `json:"removed"`
	Notifications []dashboard.Notification `json:"notifications"`
	ServerTime    time.Time                `json:"server_time"`
}

func newDashboard(t *testing.T, cfg dashboard.Config) (*dashboard.Dashboard, *httptest.Server) {
	t.Helper()
	if cfg.FlushInterval == 0 {
		cfg.FlushInterval = time.Millisecond
	}
	d, err := dashboard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	t.Cleanup(func() {
		_ = d.Close()
		srv.Close()
	})
	return d, srv
}

// memoryBus returns an in-memory backend and a Bus over it, both closed
// when the test ends.
func memoryBus(t *testing.T) (*memory.Backend, *events.Bus) {
	t.Helper()
	mem, err := memory.New(context.Background(), memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mem.Close() })
	bus, err := events.NewBus(mem)
	if err != nil {
		t.Fatal(err)
	}
	return mem, bus
}

func dial(ctx context.Context, t *testing.T, srv *httptest.Server) *websocket.Conn {
	t.Helper()
	c, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.CloseNow() })
	return c
}

func read(ctx context.Context, t *testing.T, c *websocket.Conn) msg {
	t.Helper()
	_, b, err := c.Read(ctx)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	var m msg
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return m
}

// readUntil reads messages until cond holds for one of them.
func readUntil(ctx context.Context, t *testing.T, c *websocket.Conn, what string, cond func(msg) bool) []msg {
	t.Helper()
	var seen []msg
	for {
		_, b, err := c.Read(ctx)
		if err != nil {
			t.Fatalf("waiting for %s: %v (after %d messages)", what, err, len(seen))
		}
		var m msg
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		seen = append(seen, m)
		if cond(m) {
			return seen
		}
	}
}

var spec = eventmodels.JobSpec{ProjectID: "p", Telescope: "vla", Queue: "standard", JobName: "calibrate",
	Resources: eventmodels.Resources{CPUCores: 1, MemoryMB: 1, WalltimeSeconds: 1}}

func findJob(jobs []dashboard.JobState, id string) (dashboard.JobState, bool) {
	for _, j := range jobs {
		if j.JobID == id {
			return j, true
		}
	}
	return dashboard.JobState{}, false
}

// TestWebSocketSnapshotThenUpdates: a browser gets every known job first,
// then what changes, notifications included (each once).
func TestWebSocketSnapshotThenUpdates(t *testing.T) {
	ctx := testkit.TimeoutContext(t, deadline)
	d, srv := newDashboard(t, dashboard.Config{})
	d.Observe(eventmodels.NewJobSubmitted("ann", "job-1", spec))
	d.Observe(eventmodels.NewJobSubmitted("ann", "job-2", spec))
	d.Observe(eventmodels.NewJobQueued("ann", "job-2", "standard", 1))

	c := dial(ctx, t, srv)
	snap := read(ctx, t, c)
	if snap.Type != "snapshot" || len(snap.Jobs) != 2 || snap.Jobs[0].JobID != "job-2" || snap.Jobs[0].Status != eventmodels.StatusQueued ||
		snap.Jobs[1].Status != eventmodels.StatusSubmitted || snap.ServerTime.IsZero() {
		t.Fatalf("snapshot %+v", snap)
	}

	run := eventmodels.NewJobStatusChanged("ann", "job-1", eventmodels.StatusQueued, eventmodels.StatusRunning, 20)
	d.Observe(run)
	n := eventmodels.NewNotification("ann", "ann", eventmodels.ChannelPush, eventmodels.SeverityError, "Job job-2 failed", "oom")
	n.JobID = "job-2"
	_ = d.PushNotification(ctx, n)
	_ = d.PushNotification(ctx, n) // the same notification again: not re-sent
	d.Observe(n)                   // nor when it also arrives over the bus
	d.Observe(eventmodels.NewJobFailed("ann", "job-2", eventmodels.StatusQueued, eventmodels.ErrorUser, "bad input"))

	var notes []dashboard.Notification
	seen := readUntil(ctx, t, c, "job-2 failed", func(m msg) bool {
		notes = append(notes, m.Notifications...)
		j, ok := findJob(m.Jobs, "job-2")
		return ok && j.Status == eventmodels.StatusFailed
	})
	running := false
	for _, m := range seen {
		if m.Type != "update" {
			t.Errorf("message type %q after the snapshot", m.Type)
		}
		if j, ok := findJob(m.Jobs, "job-1"); ok && j.Status == eventmodels.StatusRunning && j.Progress == 20 && !j.StartedAt.IsZero() {
			running = true
		}
	}
	if !running {
		t.Error("no update showed job-1 running at 20 %")
	}
	if len(notes) != 1 || notes[0].Title != "Job job-2 failed" || notes[0].Severity != eventmodels.SeverityError || notes[0].ID != n.EventID.String() {
		t.Errorf("notifications %+v, want the one, once", notes)
	}
	if got := d.Jobs(); len(got) != 2 || got[0].Detail != "user_error: bad input" {
		t.Errorf("Jobs() = %+v", got)
	}
}

// TestDropAndClose: DropConnections cuts sockets without a close frame;
// so does Close, which then refuses new sockets.
func TestDropAndClose(t *testing.T) {
	ctx := testkit.TimeoutContext(t, deadline)
	d, srv := newDashboard(t, dashboard.Config{})
	c := dial(ctx, t, srv)
	read(ctx, t, c)
	if n := d.DropConnections(); n != 1 {
		t.Fatalf("DropConnections = %d, want 1", n)
	}
	_, _, err := c.Read(ctx)
	if websocket.CloseStatus(err) != -1 || err == nil {
		t.Errorf("after a drop, read = %v; want a failure without a close frame", err)
	}

	c2 := dial(ctx, t, srv) // the page reconnects
	if m := read(ctx, t, c2); m.Type != "snapshot" {
		t.Fatalf("reconnect got %+v", m)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	_, _, err = c2.Read(ctx)
	if err == nil || websocket.CloseStatus(err) != -1 {
		t.Errorf("after Close, read = %v; want the connection gone", err)
	}
	if d.Clients() != 0 {
		t.Errorf("%d clients after Close", d.Clients())
	}
	resp, err := http.Get(srv.URL + "/ws")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/ws after Close: %d, want 503", resp.StatusCode)
	}
}

func TestCrossOriginWebSocketRefused(t *testing.T) {
	ctx := testkit.TimeoutContext(t, deadline)
	_, srv := newDashboard(t, dashboard.Config{})
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws",
		&websocket.DialOptions{HTTPHeader: http.Header{"Origin": []string{"http://elsewhere.example"}}})
	if err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("cross-origin dial: %v, %v; want 403", err, resp)
	}
}

func TestMaxJobsEvicts(t *testing.T) {
	ctx := testkit.TimeoutContext(t, deadline)
	d, srv := newDashboard(t, dashboard.Config{MaxJobs: 2})
	c := dial(ctx, t, srv)
	read(ctx, t, c)
	for _, id := range []string{"job-1", "job-2", "job-3"} {
		d.Observe(eventmodels.NewJobSubmitted("ann", id, spec))
	}
	readUntil(ctx, t, c, "job-1 removed", func(m msg) bool { return len(m.Removed) == 1 && m.Removed[0] == "job-1" })
	if got := d.Jobs(); len(got) != 2 || got[0].JobID != "job-3" || got[1].JobID != "job-2" {
		t.Errorf("Jobs() = %+v", got)
	}
}

func TestMaxClients(t *testing.T) {
	ctx := testkit.TimeoutContext(t, deadline)
	_, srv := newDashboard(t, dashboard.Config{MaxClients: 1})
	c := dial(ctx, t, srv)
	read(ctx, t, c)
	_, resp, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(srv.URL, "http")+"/ws", nil)
	if err == nil || resp == nil || resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("second dial: %v; want 503", err)
	}
}

// TestSubscribeRealtime: the dashboard follows the real-time bus through
// ephemeral subscriptions (job events and notifications), and ignores what
// it cannot decode.
func TestSubscribeRealtime(t *testing.T) {
	ctx := testkit.TimeoutContext(t, deadline)
	mem, bus := memoryBus(t)
	d, srv := newDashboard(t, dashboard.Config{})
	cs, err := d.Subscribe(ctx, bus)
	if err != nil {
		t.Fatal(err)
	}
	c := dial(ctx, t, srv)
	read(ctx, t, c)
	if err := mem.Publish(ctx, &broker.Message{Topic: eventmodels.TopicJobLifecycle, Key: "x", Body: []byte("garbage"),
		Headers: broker.Headers{{Key: broker.HeaderType, Value: eventmodels.TypeJobSubmitted}}}); err != nil {
		t.Fatal(err)
	}
	n := eventmodels.NewNotification("ann", "ann", eventmodels.ChannelPush, eventmodels.SeverityInfo, "Job job-7 completed", "done")
	if err := bus.Publish(ctx, eventmodels.NewJobSubmitted("ann", "job-7", spec), eventmodels.NewJobCompleted("ann", "job-7", eventmodels.Usage{}), n); err != nil {
		t.Fatal(err)
	}
	var gotNote bool
	readUntil(ctx, t, c, "job-7 completed and its notification", func(m msg) bool {
		gotNote = gotNote || len(m.Notifications) == 1
		j, ok := findJob(m.Jobs, "job-7")
		return gotNote && ok && j.Status == eventmodels.StatusCompleted
	})
	if cs.Err() != nil {
		t.Errorf("consumer stopped: %v", cs.Err())
	}
}

func TestHTTPRoutes(t *testing.T) {
	var apiPath string
	api := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		apiPath = r.Method + " " + r.URL.Path
		w.WriteHeader(http.StatusTeapot)
	})
	_, srv := newDashboard(t, dashboard.Config{JobsAPI: api})
	_, bare := newDashboard(t, dashboard.Config{})
	get := func(url string) (*http.Response, string) {
		t.Helper()
		resp, err := http.Get(url)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	resp, body := get(srv.URL + "/")
	if resp.StatusCode != 200 || !strings.Contains(body, "live jobs") || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src 'self'") ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Errorf("GET /: %d %v", resp.StatusCode, resp.Header)
	}
	for _, f := range []struct{ path, ctype string }{{"/static/app.js", "javascript"}, {"/static/style.css", "text/css"}} {
		resp, body := get(srv.URL + f.path)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), f.ctype) || len(body) < 100 {
			t.Errorf("GET %s: %d %s", f.path, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	if resp, _ := get(srv.URL + "/nope"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope: %d", resp.StatusCode)
	}
	if resp, body := get(srv.URL + "/healthz"); resp.StatusCode != 200 || body != "ok\n" {
		t.Errorf("GET /healthz: %d %q", resp.StatusCode, body)
	}
	if resp, _ := get(srv.URL + "/api/jobs"); resp.StatusCode != http.StatusTeapot || apiPath != "GET /jobs" {
		t.Errorf("GET /api/jobs reached the API as %q with %d", apiPath, resp.StatusCode)
	}
	if resp, body := get(bare.URL + "/api/jobs"); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(body, "no orchestrator API") {
		t.Errorf("GET /api/jobs without an API: %d %s", resp.StatusCode, body)
	}
}

func TestCloseWithoutClients(t *testing.T) {
	d, err := dashboard.New(dashboard.Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := errors.Join(d.Close(), d.Close()); err != nil {
		t.Fatal(err)
	}
}

// TestCloseEndsGoroutines: after Close (and the server's), nothing the
// dashboard started is left running, subscriptions and sockets included.
func TestCloseEndsGoroutines(t *testing.T) {
	ctx := testkit.TimeoutContext(t, deadline)
	ignore := goleak.IgnoreCurrent()
	mem, err := memory.New(ctx, memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	bus, err := events.NewBus(mem)
	if err != nil {
		t.Fatal(err)
	}
	d, err := dashboard.New(dashboard.Config{FlushInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Subscribe(ctx, bus); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(d.Handler())
	c1, c2 := dial(ctx, t, srv), dial(ctx, t, srv)
	read(ctx, t, c1)
	read(ctx, t, c2)
	d.Observe(eventmodels.NewJobSubmitted("ann", "job-1", spec))
	read(ctx, t, c1)
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*websocket.Conn{c1, c2} {
		for { // updates sent before Close may still be buffered
			if _, _, err := c.Read(ctx); err != nil {
				if ctx.Err() != nil {
					t.Fatal("a socket survived Close")
				}
				break
			}
		}
		_ = c.CloseNow()
	}
	srv.Close()
	_ = mem.Close()
	goleak.VerifyNone(t, ignore)
}
