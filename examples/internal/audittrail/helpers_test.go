package audittrail_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/audittrail"
)

// day0 is the first day of most test trails.
var day0 = time.Date(2026, 11, 24, 9, 30, 0, 0, time.UTC)

var codec = eventmodels.NewJSONCodec(eventmodels.NewRegistry(), 0)

// fakeClock is a settable clock safe for concurrent use.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock(t time.Time) *fakeClock { return &fakeClock{now: t} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

func (c *fakeClock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// jobEntry returns the entry of a new job.status_changed event of job.
func jobEntry(t testing.TB, job string, progress float64) audittrail.Entry {
	t.Helper()
	e := eventmodels.NewJobStatusChanged("user-7", job, eventmodels.StatusRunning, eventmodels.StatusRunning, progress)
	en, err := audittrail.NewEntry(eventmodels.TopicJobLifecycle, e, codec)
	if err != nil {
		t.Fatal(err)
	}
	return en
}

// tinyEntry returns a small entry of job with the event {"n":n}.
func tinyEntry(job string, n int) audittrail.Entry {
	return audittrail.Entry{
		EventID: uuid.New(), EventType: eventmodels.TypeJobStatusChanged, Topic: eventmodels.TopicJobLifecycle,
		Key: job, JobID: job, CorrelationID: uuid.New(), UserID: "user-7", EventTime: day0,
		Event: []byte(fmt.Sprintf(`{"n":%d}`, n)),
	}
}

// healthEntry returns the entry of a new system.health event (no job).
func healthEntry(t testing.TB) audittrail.Entry {
	t.Helper()
	e := eventmodels.NewSystemHealth("svc", "kafka", eventmodels.HealthHealthy, 1.5, nil)
	en, err := audittrail.NewEntry(eventmodels.TopicSystemHealth, e, codec)
	if err != nil {
		t.Fatal(err)
	}
	return en
}

// logBuffer collects log output safely across goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// open opens a trail in dir and closes it at cleanup.
func open(t testing.TB, dir string, opts ...audittrail.Option) *audittrail.Trail {
	t.Helper()
	tr, err := audittrail.Open(dir, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// mustAppend appends e and fails unless it was appended.
func mustAppend(t testing.TB, tr *audittrail.Trail, e audittrail.Entry) {
	t.Helper()
	ok, err := tr.Append(context.Background(), e)
	if err != nil || !ok {
		t.Fatalf("Append(%s) = %v, %v; want true, nil", e.EventID, ok, err)
	}
}

// buildTrail writes perDay records on each of days consecutive days
// starting at day0, closes the trail, and returns the segment paths and
// the entries in trail order.
func buildTrail(t testing.TB, dir string, days, perDay int) ([]string, []audittrail.Entry) {
	t.Helper()
	clk := newClock(day0)
	tr := open(t, dir, audittrail.Clock(clk.Now))
	var segs []string
	var entries []audittrail.Entry
	for d := range days {
		clk.Set(day0.AddDate(0, 0, d))
		for i := range perDay {
			e := tinyEntry(fmt.Sprintf("job-%d", i%2), d*perDay+i)
			mustAppend(t, tr, e)
			entries = append(entries, e)
		}
		segs = append(segs, filepath.Join(dir, audittrail.SegmentName(clk.Now())))
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	return segs, entries
}

// lines returns the lines of a file, each with its newline.
func lines(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	parts := bytes.SplitAfter(b, []byte("\n"))
	if len(parts[len(parts)-1]) == 0 {
		parts = parts[:len(parts)-1]
	}
	return parts
}

// rewrite replaces the content of path with f(content).
func rewrite(t testing.TB, path string, f func([]byte) []byte) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, f(b), 0o640); err != nil {
		t.Fatal(err)
	}
}

// verifyOK fails unless the trail in dir verifies intact without a torn
// tail, and returns the report.
func verifyOK(t testing.TB, dir string) *audittrail.VerifyReport {
	t.Helper()
	rep, err := audittrail.VerifyDir(context.Background(), dir)
	if err != nil {
		t.Fatalf("VerifyDir: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("VerifyDir: broken: %s", rep.Broken)
	}
	if rep.TornTail != nil {
		t.Fatalf("VerifyDir: torn tail %+v", rep.TornTail)
	}
	return rep
}

// countIDs returns how often each event ID occurs in the segments of dir.
func countIDs(t testing.TB, dir string) map[string]int {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "segment-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, p := range names {
		for _, l := range lines(t, p) {
			i := bytes.Index(l, []byte(`"event_id":"`))
			if i < 0 {
				t.Fatalf("%s: line without event_id: %q", p, l)
			}
			id := string(l[i+len(`"event_id":"`):][:36])
			n[id]++
		}
	}
	return n
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func uuidOf(t testing.TB, s string) uuid.UUID {
	t.Helper()
	id, err := uuid.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return id
}
