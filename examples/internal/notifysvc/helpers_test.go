package notifysvc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/notifysvc"
)

// deadline bounds every wait; generous, because the machine is shared.
const deadline = 30 * time.Second

// env is a memory broker (platform topics with their partition counts)
// with a durable bus over it.
type env struct {
	mem *memory.Backend
	bus *events.Bus
}

func newEnv(t *testing.T) *env {
	t.Helper()
	mem, err := memory.New(context.Background(), memory.Config{Topics: events.PlatformTopics()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mem.Close() })
	bus, err := events.NewBus(mem)
	if err != nil {
		t.Fatal(err)
	}
	return &env{mem: mem, bus: bus}
}

// newService builds a service over e and closes it at the end of the test.
func (e *env) newService(t *testing.T, cfg notifysvc.Config) *notifysvc.Service {
	t.Helper()
	if cfg.Publisher == nil {
		cfg.Publisher = e.bus
	}
	svc, err := notifysvc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = svc.Close() })
	return svc
}

// receiver is a webhook endpoint that fails the first FailFirst attempts of
// every notification (by Idempotency-Key) with Status, or every attempt
// when FailFirst < 0, and records what it accepted.
type receiver struct {
	srv       *httptest.Server
	failFirst int
	status    int
	secret    []byte

	mu       sync.Mutex
	attempts map[string]int
	accepted map[string]int
	notes    []eventmodels.Notification
	badSig   int
}

func newReceiver(t *testing.T, failFirst, status int) *receiver {
	t.Helper()
	r := &receiver{failFirst: failFirst, status: status, attempts: map[string]int{}, accepted: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	key := req.Header.Get(notifysvc.HeaderIdempotencyKey)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.secret != nil && req.Header.Get(notifysvc.HeaderSignature) != notifysvc.Sign(r.secret, body) {
		r.badSig++
		http.Error(w, "bad signature", http.StatusUnauthorized)
		return
	}
	r.attempts[key]++
	if r.failFirst < 0 || r.attempts[key] <= r.failFirst {
		http.Error(w, "try again", r.status)
		return
	}
	var n eventmodels.Notification
	if err := json.Unmarshal(body, &n); err != nil || n.EventID.String() != key {
		http.Error(w, fmt.Sprintf("bad body or key: %v", err), http.StatusBadRequest)
		return
	}
	r.accepted[key]++
	r.notes = append(r.notes, n)
	w.WriteHeader(http.StatusNoContent)
}

func (r *receiver) snapshot() (attempts, accepted map[string]int, notes []eventmodels.Notification) {
	r.mu.Lock()
	defer r.mu.Unlock()
	attempts, accepted = map[string]int{}, map[string]int{}
	for k, v := range r.attempts {
		attempts[k] = v
	}
	for k, v := range r.accepted {
		accepted[k] = v
	}
	return attempts, accepted, append([]eventmodels.Notification(nil), r.notes...)
}

// fastRetry makes webhook retries quick.
var fastRetry = broker.RetryPolicy{MaxAttempts: 4, InitialBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond}

// recordPusher is a Pusher that records what it was given.
type recordPusher struct {
	mu    sync.Mutex
	notes []*eventmodels.Notification
}

func (p *recordPusher) PushNotification(_ context.Context, n *eventmodels.Notification) error {
	p.mu.Lock()
	p.notes = append(p.notes, n)
	p.mu.Unlock()
	return nil
}

func (p *recordPusher) all() []*eventmodels.Notification {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]*eventmodels.Notification(nil), p.notes...)
}

// logRecorder is a slog.Handler keeping each record's attributes.
type logRecorder struct {
	mu   sync.Mutex
	recs []map[string]string
}

func (h *logRecorder) Enabled(context.Context, slog.Level) bool { return true }
func (h *logRecorder) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{"msg": r.Message, "level": r.Level.String()}
	r.Attrs(func(a slog.Attr) bool { m[a.Key] = a.Value.String(); return true })
	h.mu.Lock()
	h.recs = append(h.recs, m)
	h.mu.Unlock()
	return nil
}
func (h *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logRecorder) WithGroup(string) slog.Handler      { return h }

func (h *logRecorder) records() []map[string]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]map[string]string(nil), h.recs...)
}

// spec is a valid job spec.
func spec() eventmodels.JobSpec {
	return eventmodels.JobSpec{ProjectID: "proj-1", Telescope: "vla", Queue: "standard",
		Resources: eventmodels.Resources{CPUCores: 4, MemoryMB: 1024, WalltimeSeconds: 600}}
}

// terminalEvents returns one completed, one failed and one cancelled job
// event per user.
func terminalEvents(users ...string) []eventmodels.Event {
	var out []eventmodels.Event
	for i, u := range users {
		out = append(out,
			eventmodels.NewJobCompleted(u, fmt.Sprintf("job-c%d", i), eventmodels.Usage{RuntimeMS: 1000, Progress: 100}),
			failed(u, fmt.Sprintf("job-f%d", i)),
			eventmodels.NewJobCancelled(u, fmt.Sprintf("job-x%d", i), eventmodels.StatusQueued, "not needed"))
	}
	return out
}

func failed(user, job string) *eventmodels.JobFailed {
	return eventmodels.NewJobFailed(user, job, eventmodels.StatusRunning, eventmodels.ErrorOutOfMemory, "killed: out of memory")
}

func sum(m map[eventmodels.Channel]int64) int64 {
	var n int64
	for _, v := range m {
		n += v
	}
	return n
}
