package auditsvc_test

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"go.uber.org/goleak"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/auditsvc"
	"github.com/cosmic-horizons/events/examples/internal/audittrail"
	"github.com/cosmic-horizons/events/testkit"
)

// TestMain fails the package if a test leaves a goroutine behind.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// timeout bounds every wait; nothing sleeps to synchronise.
const timeout = 30 * time.Second

// env is a memory broker (platform topics with their partition counts)
// with a Bus publishing Avro through it.
type env struct {
	b   *memory.Backend
	bus *events.Bus
	dir string
}

func newEnv(t *testing.T) *env {
	t.Helper()
	b, err := memory.New(context.Background(), memory.Config{Topics: events.PlatformTopics()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	bus, err := events.NewBus(b)
	if err != nil {
		t.Fatal(err)
	}
	return &env{b: b, bus: bus, dir: t.TempDir()}
}

// service opens a Service on the env's directory, closed at the end of the
// test (after the consumers subscribed later, which close first).
func (e *env) service(t *testing.T, cfg auditsvc.Config) *auditsvc.Service {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = e.dir
	}
	if cfg.Bus == nil {
		cfg.Bus = e.bus
	}
	s, err := auditsvc.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// subscribe subscribes s to every topic as group; the consumers are closed
// at the end of the test.
func (e *env) subscribe(t *testing.T, s *auditsvc.Service, group string) []broker.Consumer {
	t.Helper()
	cs, err := s.Subscribe(context.Background(), e.b, group, 4)
	if err != nil {
		t.Fatalf("Subscribe: %v", err)
	}
	t.Cleanup(func() { closeAll(cs) })
	return cs
}

func closeAll(cs []broker.Consumer) {
	for _, c := range cs {
		_ = c.Close()
	}
}

func (e *env) publish(t *testing.T, evs ...eventmodels.Event) {
	t.Helper()
	if err := e.bus.Publish(context.Background(), evs...); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

// platformEvents returns a mix of events on every platform topic: jobs
// lifecycles with metrics, notifications and audit events about the jobs,
// and system health reports.
func platformEvents(seed int64, jobs int) []eventmodels.Event {
	b := testkit.NewEventBuilder(seed)
	var out []eventmodels.Event
	outcomes := []eventmodels.JobStatus{eventmodels.StatusCompleted, eventmodels.StatusFailed, eventmodels.StatusCancelled}
	for i := range jobs {
		job := b.NewJobID()
		life := b.JobLifecycle(job, outcomes[i%len(outcomes)], 2)
		out = append(out, life[:3]...)
		out = append(out, b.JobMetrics().With(func(m *eventmodels.JobMetrics) { m.JobID = job }).Build())
		out = append(out, life[3:]...)
		out = append(out, b.JobMetrics().With(func(m *eventmodels.JobMetrics) { m.JobID = job }).Build())
		out = append(out, b.Notification().With(func(n *eventmodels.Notification) { n.JobID = job }).Build())
		out = append(out, b.Audit().With(func(a *eventmodels.Audit) { a.Resource = eventmodels.Resource{Type: "job", ID: job} }).Build())
		out = append(out, b.SystemHealth().Build())
	}
	return out
}

// readTrail reads every record of the trail in dir, in trail order.
func readTrail(t *testing.T, dir string) []audittrail.Record {
	t.Helper()
	recs, err := audittrail.ReadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

// assertExactlyOnce fails unless recs hold each event of evs exactly once
// and nothing else.
func assertExactlyOnce(t *testing.T, recs []audittrail.Record, evs []eventmodels.Event) {
	t.Helper()
	want := map[uuid.UUID]bool{}
	for _, e := range evs {
		want[e.Envelope().EventID] = true
	}
	seen := map[uuid.UUID]int{}
	for _, r := range recs {
		seen[r.EventID]++
		if !want[r.EventID] {
			t.Errorf("record seq %d: event %s was never published", r.Seq, r.EventID)
		}
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("event %s recorded %d times, want once", id, seen[id])
		}
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i+1, r.Seq)
		}
	}
}

// settableClock is a Clock tests move by hand.
type settableClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *settableClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *settableClock) Set(t time.Time) {
	c.mu.Lock()
	c.now = t
	c.mu.Unlock()
}

// segmentLine returns the bounds of line n (from 1, newline included) of a
// segment's bytes.
func segmentLine(t *testing.T, b []byte, n int) (start, end int) {
	t.Helper()
	for i := 1; i < n; i++ {
		k := bytes.IndexByte(b[start:], '\n')
		if k < 0 {
			t.Fatalf("segment has fewer than %d lines", n)
		}
		start += k + 1
	}
	k := bytes.IndexByte(b[start:], '\n')
	if k < 0 {
		t.Fatalf("line %d has no newline", n)
	}
	return start, start + k + 1
}

func onlySegment(t *testing.T, dir string) string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "segment-*.jsonl"))
	if err != nil || len(names) != 1 {
		t.Fatalf("segments %v (%v), want exactly one", names, err)
	}
	return names[0]
}

func contains(s string, subs ...string) []string {
	var missing []string
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			missing = append(missing, sub)
		}
	}
	return missing
}
