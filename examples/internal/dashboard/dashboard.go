package dashboard

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/google/uuid"
)

// Defaults of a Config.
const (
	DefaultMaxJobs       = 10_000
	DefaultMaxClients    = 1_000
	DefaultFlushInterval = 100 * time.Millisecond
	DefaultPingInterval  = 15 * time.Second
	DefaultWriteTimeout  = 10 * time.Second
)

// Config configures a Dashboard.
type Config struct {
	// JobsAPI is the orchestrator's API (orchestrator.Service.Handler(),
	// or a reverse proxy to it), served under /api/ with the prefix
	// stripped: the page submits to /api/jobs and re-syncs from GET
	// /api/jobs. Nil: /api/ answers 503 and the page hides the form.
	JobsAPI http.Handler
	// MaxJobs bounds the jobs kept; the oldest seen is forgotten first.
	// Default DefaultMaxJobs.
	MaxJobs int
	// MaxClients bounds the open WebSockets; more are refused with 503.
	// Default DefaultMaxClients.
	MaxClients int
	// FlushInterval is how long updates are gathered before they are sent
	// to a browser, so a burst of events costs one message. Default
	// DefaultFlushInterval.
	FlushInterval time.Duration
	// PingInterval is how often an idle WebSocket is pinged, to notice a
	// peer that vanished. Default DefaultPingInterval.
	PingInterval time.Duration
	// WriteTimeout bounds each write (and ping) to a browser; a browser
	// that cannot keep up is disconnected (it reconnects and re-syncs).
	// Default DefaultWriteTimeout.
	WriteTimeout time.Duration
	// Logger; default discard.
	Logger *slog.Logger
	// Clock; default time.Now.
	Clock func() time.Time
}

// Dashboard keeps the live state of every job and serves it. Safe for
// concurrent use.
type Dashboard struct {
	cfg    Config
	log    *slog.Logger
	router *events.Router

	mu        sync.Mutex
	jobs      map[string]*JobState
	order     []string // job IDs in the order first seen, for eviction
	clients   map[*client]struct{}
	noteSeen  map[uuid.UUID]struct{}
	noteOrder []uuid.UUID
	consumers []broker.Consumer
	closed    bool
	conns     sync.WaitGroup
}

// maxRememberedNotes bounds the notification IDs kept to drop duplicates.
const maxRememberedNotes = 4096

// maxQueuedNotes bounds the notifications waiting for one browser; older
// ones are dropped first.
const maxQueuedNotes = 50

// New returns a dashboard.
func New(cfg Config) (*Dashboard, error) {
	if cfg.MaxJobs <= 0 {
		cfg.MaxJobs = DefaultMaxJobs
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = DefaultPingInterval
	}
	if cfg.WriteTimeout <= 0 {
		cfg.WriteTimeout = DefaultWriteTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	d := &Dashboard{cfg: cfg, log: cfg.Logger, jobs: map[string]*JobState{}, clients: map[*client]struct{}{},
		noteSeen: map[uuid.UUID]struct{}{}}
	d.router = d.newRouter()
	return d, nil
}

// newRouter returns the dashboard's handlers: every job lifecycle event
// updates its job, notifications are pushed.
func (d *Dashboard) newRouter() *events.Router {
	r := events.NewRouter()
	job := func(_ context.Context, e eventmodels.Event) error {
		d.observeJob(e)
		return nil
	}
	events.On(r, func(ctx context.Context, e *eventmodels.JobSubmitted) error { return job(ctx, e) })
	events.On(r, func(ctx context.Context, e *eventmodels.JobQueued) error { return job(ctx, e) })
	events.On(r, func(ctx context.Context, e *eventmodels.JobStatusChanged) error { return job(ctx, e) })
	events.On(r, func(ctx context.Context, e *eventmodels.JobCompleted) error { return job(ctx, e) })
	events.On(r, func(ctx context.Context, e *eventmodels.JobFailed) error { return job(ctx, e) })
	events.On(r, func(ctx context.Context, e *eventmodels.JobCancelled) error { return job(ctx, e) })
	events.On(r, func(_ context.Context, n *eventmodels.Notification) error {
		d.pushNote(n)
		return nil
	})
	return r
}

// Observe folds one event into the state and sends what changed to every
// browser: job lifecycle events update their job, notifications are pushed
// (once per event ID); other events are ignored.
func (d *Dashboard) Observe(e eventmodels.Event) { _ = d.router.Dispatch(context.Background(), e) }

// observeJob folds a job lifecycle event into its job's state.
func (d *Dashboard) observeJob(e eventmodels.Event) {
	id := e.Key()
	if id == "" {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	j := d.jobs[id]
	if j == nil {
		j = &JobState{JobID: id}
		d.jobs[id] = j
		d.order = append(d.order, id)
		d.evict()
	}
	if !j.apply(e) {
		return
	}
	for c := range d.clients {
		c.dirty[id] = struct{}{}
		c.signal()
	}
}

// evict forgets the oldest jobs beyond MaxJobs; browsers are told to drop
// their rows. Called with d.mu held.
func (d *Dashboard) evict() {
	for len(d.jobs) > d.cfg.MaxJobs && len(d.order) > 0 {
		id := d.order[0]
		d.order = d.order[1:]
		delete(d.jobs, id)
		for c := range d.clients {
			c.dirty[id] = struct{}{} // sent as removed: it is no longer in jobs
			c.signal()
		}
	}
}

// PushNotification sends n to every connected browser (it implements
// notifysvc.Pusher). A notification already pushed (same event ID) is
// not pushed again. It never fails: a browser not connected misses it.
func (d *Dashboard) PushNotification(_ context.Context, n *eventmodels.Notification) error {
	d.pushNote(n)
	return nil
}

func (d *Dashboard) pushNote(n *eventmodels.Notification) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, dup := d.noteSeen[n.EventID]; dup {
		return
	}
	d.noteSeen[n.EventID] = struct{}{}
	d.noteOrder = append(d.noteOrder, n.EventID)
	if len(d.noteOrder) > maxRememberedNotes {
		delete(d.noteSeen, d.noteOrder[0])
		d.noteOrder = d.noteOrder[1:]
	}
	view := noteView(n)
	for c := range d.clients {
		c.notes = append(c.notes, view)
		if len(c.notes) > maxQueuedNotes {
			c.notes = c.notes[1:]
		}
		c.signal()
	}
}

// Jobs returns the state of every known job, newest job ID first.
func (d *Dashboard) Jobs() []JobState {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.snapshotLocked()
}

func (d *Dashboard) snapshotLocked() []JobState {
	out := make([]JobState, 0, len(d.jobs))
	for _, j := range d.jobs {
		out = append(out, *j)
	}
	sort.Slice(out, func(i, k int) bool { return out[i].JobID > out[k].JobID })
	return out
}

// Clients returns the number of open WebSockets.
func (d *Dashboard) Clients() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.clients)
}

// DropConnections closes every open WebSocket abruptly, without a closing
// handshake, as a network failure would, and returns how many it closed.
// Browsers see the connection drop, reconnect and re-sync. For tests and
// drills.
func (d *Dashboard) DropConnections() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	for c := range d.clients {
		c.cancel()
	}
	return len(d.clients)
}

// Subscribe feeds the dashboard from the real-time path: ephemeral
// subscriptions (nothing kept on the broker, only what is published from
// now on; the page re-syncs the past from the API) to job-lifecycle and to
// notifications, whose failures are discarded (a live view must never
// stall). The consumers are returned and also closed by Close.
func (d *Dashboard) Subscribe(ctx context.Context, realtime *events.Bus) (broker.Consumer, error) {
	c, err := realtime.Subscribe(ctx, broker.Subscription{Group: "dashboard", Ephemeral: true, OnFailure: broker.OnFailureDiscard, Retry: broker.RetryPolicy{MaxAttempts: 1}},
		d.router)
	if err != nil {
		return nil, fmt.Errorf("dashboard: %w", err)
	}
	d.mu.Lock()
	d.consumers = append(d.consumers, c)
	d.mu.Unlock()
	return c, nil
}

// Close stops the subscriptions started by Subscribe, closes every
// WebSocket and waits for their handlers to return. Later
// WebSocket requests are refused with 503. Close is idempotent.
func (d *Dashboard) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	d.closed = true
	cs := d.consumers
	d.consumers = nil
	for c := range d.clients {
		c.cancel()
	}
	d.mu.Unlock()
	var errs []error
	for _, c := range cs {
		if err := c.Close(); err != nil && !errors.Is(err, context.Canceled) {
			errs = append(errs, err)
		}
	}
	d.conns.Wait()
	return errors.Join(errs...)
}

// Notification is a notification as the page shows it.
type Notification struct {
	ID       string               `json:"id"`
	JobID    string               `json:"job_id,omitempty"`
	UserID   string               `json:"user_id"`
	Severity eventmodels.Severity `json:"severity"`
	Title    string               `json:"title"`
	Message  string               `json:"message"`
	At       time.Time            `json:"at"`
}

func noteView(n *eventmodels.Notification) Notification {
	return Notification{ID: n.EventID.String(), JobID: n.JobID, UserID: n.UserID, Severity: n.Severity, Title: n.Title, Message: n.Message, At: n.Timestamp}
}
