package audittrail_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cosmic-horizons/events/examples/internal/audittrail"
)

func TestAppendAndQuery(t *testing.T) {
	dir := t.TempDir()
	clk := newClock(day0)
	tr := open(t, dir, audittrail.Clock(clk.Now))
	ctx := context.Background()

	a1, b1, h, a2 := jobEntry(t, "job-a", 10), jobEntry(t, "job-b", 10), healthEntry(t), jobEntry(t, "job-a", 20)
	for _, e := range []audittrail.Entry{a1, b1, h, a2} {
		mustAppend(t, tr, e)
		clk.Add(1)
	}
	if got := tr.Len(); got != 4 {
		t.Fatalf("Len = %d, want 4", got)
	}
	if !tr.Has(b1.EventID) || tr.Has(uuid.New()) {
		t.Fatal("Has is wrong")
	}

	recs, err := tr.ByJob(ctx, "job-a")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].EventID != a1.EventID || recs[1].EventID != a2.EventID {
		t.Fatalf("ByJob(job-a) = %+v", recs)
	}
	r := recs[1]
	if r.Seq != 4 || r.JobID != "job-a" || r.Key != "job-a" || r.Topic != a2.Topic ||
		r.EventType != a2.EventType || r.UserID != a2.UserID || r.CorrelationID != a2.CorrelationID ||
		!r.EventTime.Equal(a2.EventTime) || !r.RecordedAt.Equal(day0.Add(3)) {
		t.Fatalf("record = %+v, entry = %+v", r, a2)
	}
	var compact bytes.Buffer
	json.Compact(&compact, a2.Event)
	if !bytes.Equal(r.Event, compact.Bytes()) {
		t.Fatalf("event = %s, want %s", r.Event, compact.Bytes())
	}
	seq, hash := tr.Last()
	if seq != 4 || hash != r.Hash {
		t.Fatalf("Last = %d %s, want 4 %s", seq, hash, r.Hash)
	}
	if recs, err := tr.ByJob(ctx, "job-none"); err != nil || len(recs) != 0 {
		t.Fatalf("ByJob(job-none) = %v, %v", recs, err)
	}
	st := tr.Stats()
	if st.Records != 4 || st.Appended != 4 || st.LastSeq != 4 || st.DurableSeq != 4 || st.Syncs == 0 {
		t.Fatalf("Stats = %+v", st)
	}
	rep, err := tr.Verify(ctx)
	if err != nil || !rep.OK() || rep.Records != 4 || rep.LastSeq != 4 || rep.LastHash != hash {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// TestLineFormat checks the documented format: a line is json.Marshal of
// the Record, its body is the line with the hash member replaced by "}",
// and the hash is SHA-256 over prev, "\n" and the body.
func TestLineFormat(t *testing.T) {
	dir := t.TempDir()
	tr := open(t, dir, audittrail.Clock(newClock(day0).Now))
	e := jobEntry(t, "job-<&>", 1) // characters encoding/json escapes
	e.Event = json.RawMessage("{ \"spaced\" : [1, 2],\n \"html\":\"<&>\" }")
	mustAppend(t, tr, e)
	mustAppend(t, tr, jobEntry(t, "job-<&>", 2))
	recs, err := tr.ByJob(context.Background(), "job-<&>")
	if err != nil {
		t.Fatal(err)
	}
	ls := lines(t, filepath.Join(dir, audittrail.SegmentName(day0)))
	prev := audittrail.GenesisHash
	for i, l := range ls {
		want, err := json.Marshal(recs[i])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(l, append(want, '\n')) {
			t.Fatalf("line %d:\n got %s\nwant %s", i+1, l, want)
		}
		line := l[:len(l)-1]
		suffix := `,"hash":"` + recs[i].Hash + `"}`
		if !strings.HasSuffix(string(line), suffix) || len(suffix) != 75 {
			t.Fatalf("line %d does not end with %s", i+1, suffix)
		}
		body := append(line[:len(line)-75:len(line)-75], '}')
		if got := audittrail.ChainHash(prev, body); got != recs[i].Hash || recs[i].Prev != prev {
			t.Fatalf("line %d: hash %s prev %s, want %s %s", i+1, recs[i].Hash, recs[i].Prev, got, prev)
		}
		prev = recs[i].Hash
	}
	if !bytes.Contains(ls[0], []byte(`"event":{"spaced":[1,2],"html":"\u003c\u0026\u003e"}`)) {
		t.Fatalf("event not stored compacted: %s", ls[0])
	}
}

func TestDuplicateRecordedOnce(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	tr := open(t, dir)
	e := jobEntry(t, "job-1", 1)
	for i, want := range []bool{true, false, false} {
		ok, err := tr.Append(ctx, e)
		if err != nil || ok != want {
			t.Fatalf("Append #%d = %v, %v; want %v", i+1, ok, err, want)
		}
	}
	if st := tr.Stats(); st.Appended != 1 || st.Duplicates != 2 {
		t.Fatalf("Stats = %+v", st)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}

	tr = open(t, dir)
	if !tr.Has(e.EventID) {
		t.Fatal("Has after reopen = false")
	}
	if ok, err := tr.Append(ctx, e); ok || err != nil {
		t.Fatalf("Append after reopen = %v, %v; want false, nil", ok, err)
	}
	if n := countIDs(t, dir)[e.EventID.String()]; n != 1 {
		t.Fatalf("event recorded %d times", n)
	}
}

func TestChainAcrossRolloverAndReopen(t *testing.T) {
	dir := t.TempDir()
	clk := newClock(time.Date(2026, 11, 24, 23, 29, 0, 0, time.UTC))
	tr := open(t, dir, audittrail.Clock(clk.Now))
	for i := range 3 {
		mustAppend(t, tr, jobEntry(t, "job-1", float64(i)))
	}
	_, lastOfDay1 := tr.Last()
	clk.Add(31 * time.Minute) // 00:00 the next day
	for i := range 2 {
		mustAppend(t, tr, jobEntry(t, "job-1", float64(10+i)))
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	seg1, seg2 := filepath.Join(dir, audittrail.SegmentName(day0)), filepath.Join(dir, audittrail.SegmentName(day0.AddDate(0, 0, 1)))
	if n1, n2 := len(lines(t, seg1)), len(lines(t, seg2)); n1 != 3 || n2 != 2 {
		t.Fatalf("segments hold %d and %d records, want 3 and 2", n1, n2)
	}
	if first := lines(t, seg2)[0]; !bytes.Contains(first, []byte(`"seq":4,"prev":"`+lastOfDay1+`"`)) {
		t.Fatalf("first record of day 2 does not link to the last of day 1: %s", first)
	}

	clk.Add(24 * time.Hour)
	tr = open(t, dir, audittrail.Clock(clk.Now))
	if seq, _ := tr.Last(); seq != 5 {
		t.Fatalf("Last after reopen = %d, want 5", seq)
	}
	mustAppend(t, tr, jobEntry(t, "job-1", 20))
	recs, err := tr.ByJob(context.Background(), "job-1")
	if err != nil || len(recs) != 6 {
		t.Fatalf("ByJob = %d records, %v", len(recs), err)
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) || (i > 0 && r.Prev != recs[i-1].Hash) {
			t.Fatalf("record %d: seq %d prev %s", i, r.Seq, r.Prev)
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	rep := verifyOK(t, dir)
	if rep.Records != 6 || len(rep.Segments) != 3 {
		t.Fatalf("report = %+v", rep)
	}
}

func TestClockGoingBackStaysInNewestSegment(t *testing.T) {
	dir := t.TempDir()
	clk := newClock(day0.AddDate(0, 0, 1))
	tr := open(t, dir, audittrail.Clock(clk.Now))
	mustAppend(t, tr, jobEntry(t, "j", 1))
	clk.Set(day0)
	mustAppend(t, tr, jobEntry(t, "j", 2))
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, audittrail.SegmentName(day0))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("an older segment was created: %v", err)
	}
	if rep := verifyOK(t, dir); rep.Records != 2 {
		t.Fatalf("Records = %d", rep.Records)
	}
}

func TestInvalidEntry(t *testing.T) {
	tr := open(t, t.TempDir())
	valid := jobEntry(t, "j", 1)
	for _, tc := range []struct {
		name string
		edit func(*audittrail.Entry)
	}{
		{"nil event ID", func(e *audittrail.Entry) { e.EventID = uuid.Nil }},
		{"empty event type", func(e *audittrail.Entry) { e.EventType = "" }},
		{"no body", func(e *audittrail.Entry) { e.Event = nil }},
		{"body not an object", func(e *audittrail.Entry) { e.Event = json.RawMessage(`[1]`) }},
		{"body not JSON", func(e *audittrail.Entry) { e.Event = json.RawMessage(`{"a":`) }},
		{"body too large", func(e *audittrail.Entry) {
			e.Event = json.RawMessage(`{"a":"` + strings.Repeat("x", audittrail.MaxEventSize) + `"}`)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := valid
			tc.edit(&e)
			ok, err := tr.Append(context.Background(), e)
			if ok || !errors.Is(err, audittrail.ErrInvalidEntry) {
				t.Fatalf("Append = %v, %v; want ErrInvalidEntry", ok, err)
			}
		})
	}
	if tr.Len() != 0 {
		t.Fatalf("Len = %d after invalid entries", tr.Len())
	}
}

func TestLockedAndClosed(t *testing.T) {
	dir := t.TempDir()
	tr := open(t, dir)
	if _, err := audittrail.Open(dir); !errors.Is(err, audittrail.ErrLocked) {
		t.Fatalf("second Open = %v, want ErrLocked", err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := tr.Close(); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	ctx := context.Background()
	if _, err := tr.Append(ctx, jobEntry(t, "j", 1)); !errors.Is(err, audittrail.ErrClosed) {
		t.Fatalf("Append after Close = %v", err)
	}
	if _, err := tr.ByJob(ctx, "j"); !errors.Is(err, audittrail.ErrClosed) {
		t.Fatalf("ByJob after Close = %v", err)
	}
	if _, err := tr.Verify(ctx); !errors.Is(err, audittrail.ErrClosed) {
		t.Fatalf("Verify after Close = %v", err)
	}
	if _, err := tr.Prune(ctx); !errors.Is(err, audittrail.ErrClosed) {
		t.Fatalf("Prune after Close = %v", err)
	}
	open(t, dir) // the lock is released
}

func TestOptionsValidated(t *testing.T) {
	for _, opt := range []audittrail.Option{audittrail.Retention(-1), audittrail.CommitDelay(-1)} {
		if _, err := audittrail.Open(t.TempDir(), opt); err == nil {
			t.Fatal("Open accepted an invalid option")
		}
	}
}

// lazyCtx is a context that is not done until someone waits on Done: an
// Append with it gets past its entry check, writes, and then sees the
// context end while it waits for the fsync.
type lazyCtx struct {
	context.Context
	done chan struct{}
	err  error
}

func newLazyCtx() *lazyCtx {
	return &lazyCtx{Context: context.Background(), done: make(chan struct{})}
}

func (c *lazyCtx) Done() <-chan struct{} {
	if c.err == nil {
		c.err = context.Canceled
		close(c.done)
	}
	return c.done
}

func (c *lazyCtx) Err() error { return c.err }

func TestContextEndsBeforeFsync(t *testing.T) {
	dir := t.TempDir()
	// A commit delay far longer than the test keeps the fsync from
	// happening until the context ends or the trail closes.
	tr := open(t, dir, audittrail.CommitDelay(24*time.Hour))
	e := jobEntry(t, "j", 1)
	ok, err := tr.Append(newLazyCtx(), e)
	if ok || !errors.Is(err, context.Canceled) {
		t.Fatalf("Append = %v, %v; want false, context.Canceled", ok, err)
	}
	if !tr.Has(e.EventID) {
		t.Fatal("the record was not written")
	}
	if recs, _ := tr.ByJob(context.Background(), "j"); len(recs) != 0 {
		t.Fatalf("ByJob shows an unacknowledged record: %+v", recs)
	}
	if err := tr.Close(); err != nil { // Close fsyncs it without waiting for the delay
		t.Fatal(err)
	}
	tr = open(t, dir)
	if ok, err := tr.Append(context.Background(), e); ok || err != nil {
		t.Fatalf("redelivery = %v, %v; want false, nil", ok, err)
	}
	if n := countIDs(t, dir)[e.EventID.String()]; n != 1 {
		t.Fatalf("recorded %d times", n)
	}
}

func TestNewEntryJobIDs(t *testing.T) {
	e := jobEntry(t, "job-9", 1)
	if e.JobID != "job-9" || e.Key != "job-9" || e.Topic != "job-lifecycle" {
		t.Fatalf("entry = %+v", e)
	}
	if h := healthEntry(t); h.JobID != "" {
		t.Fatalf("health event has job ID %q", h.JobID)
	}
	if fmt.Sprint(audittrail.SegmentName(day0)) != "segment-2026-11-24.jsonl" {
		t.Fatalf("SegmentName = %s", audittrail.SegmentName(day0))
	}
}

func TestWriteFailureIsSticky(t *testing.T) {
	dir := t.TempDir()
	tr, err := audittrail.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	kept := jobEntry(t, "j", 1)
	mustAppend(t, tr, kept)
	tr.BreakSegment()
	for i := range 2 {
		if ok, err := tr.Append(ctx, jobEntry(t, "j", 2)); ok || !errors.Is(err, audittrail.ErrFailed) {
			t.Fatalf("Append #%d after a write failure = %v, %v; want ErrFailed", i+1, ok, err)
		}
	}
	if err := tr.Close(); !errors.Is(err, audittrail.ErrFailed) {
		t.Fatalf("Close = %v, want ErrFailed", err)
	}
	tr = open(t, dir) // reopening recovers
	if !tr.Has(kept.EventID) {
		t.Fatal("acknowledged record lost")
	}
	mustAppend(t, tr, jobEntry(t, "j", 3))
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	verifyOK(t, dir)
}
