package auditsvc_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/examples/internal/auditsvc"
	"github.com/cosmic-horizons/events/examples/internal/audittrail"
	"github.com/cosmic-horizons/events/testkit"
)

// Segments older than the retention (90 days by default) are removed whole
// by RunRetention; the anchor keeps the chain verifiable.
func TestRetentionRemovesOldSegments(t *testing.T) {
	e := newEnv(t)
	day1 := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	clock := &settableClock{now: day1}
	s := e.service(t, auditsvc.Config{Clock: clock.Now})
	e.subscribe(t, s, "audit")
	batch := func(seed int64) string { // one job's first four events; returns the job ID
		evs := platformEvents(seed, 1)[:4]
		want := s.Consumed() + int64(len(evs))
		e.publish(t, evs...)
		testkit.Eventually(testkit.TimeoutContext(t, timeout), t, "batch recorded", func() bool { return s.Consumed() == want })
		return audittrail.JobIDOf(evs[0])
	}
	oldJob := batch(21)
	clock.Set(day1.Add(24 * time.Hour))
	keptJob := batch(22)
	// 90 days after the second day: the first day is older than the
	// retention, the second is not (its end is less than 90 days ago).
	clock.Set(day1.Add(91 * 24 * time.Hour))
	newJob := batch(23)

	if err := s.RunRetention(context.Background(), 0); err == nil {
		t.Fatal("RunRetention with a zero interval succeeded")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.RunRetention(ctx, time.Hour) }() // prunes at once, then hourly
	testkit.Eventually(testkit.TimeoutContext(t, timeout), t, "the first prune", func() bool { return s.Stats().PrunedSegments == 1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("RunRetention = %v, want nil after ctx ended", err)
		}
	case <-time.After(timeout):
		t.Fatal("RunRetention did not return after ctx ended")
	}

	if _, err := os.Stat(filepath.Join(e.dir, audittrail.SegmentName(day1))); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the oldest segment is still there (%v)", err)
	}
	rep, err := s.Verify(context.Background())
	if err != nil || !rep.OK() {
		t.Fatalf("Verify after prune = %+v, %v", rep, err)
	}
	if rep.Anchor == nil || rep.Anchor.Seq != 4 || rep.Anchor.Segment != audittrail.SegmentName(day1) || rep.Records != 8 || len(rep.Segments) != 2 {
		t.Fatalf("Verify after prune: anchor %+v, %d records in %v; want anchor at seq 4, 8 records in 2 segments", rep.Anchor, rep.Records, rep.Segments)
	}
	for _, tc := range []struct {
		job  string
		want int
	}{{oldJob, 0}, {keptJob, 4}, {newJob, 4}} {
		recs, err := s.ByJob(context.Background(), tc.job)
		if err != nil || len(recs) != tc.want {
			t.Fatalf("ByJob(%s) = %d records, %v; want %d", tc.job, len(recs), err, tc.want)
		}
	}
	if st := s.Stats(); st.Records != 8 || st.LastSeq != 12 {
		t.Fatalf("stats %+v, want 8 records retained and head seq 12", st)
	}

	// Nothing more is due: a second prune removes nothing.
	if removed, err := s.Prune(context.Background()); err != nil || len(removed) != 0 {
		t.Fatalf("second Prune = %v, %v; want nothing", removed, err)
	}
	if err := auditsvc.VerifyCommand(context.Background(), e.dir, io.Discard); err != nil {
		t.Fatalf("VerifyCommand after prune: %v", err)
	}
}

// A shorter Retention is honoured, and RunRetention stops with ErrClosed
// once the service is closed.
func TestRetentionConfigAndClose(t *testing.T) {
	e := newEnv(t)
	day1 := time.Date(2026, 6, 1, 8, 0, 0, 0, time.UTC)
	clock := &settableClock{now: day1}
	s := e.service(t, auditsvc.Config{Clock: clock.Now, Retention: 7 * 24 * time.Hour})
	recordDirect(t, e, s, platformEvents(31, 1)[:2])
	clock.Set(day1.Add(8 * 24 * time.Hour))
	recordDirect(t, e, s, platformEvents(32, 1)[:2])
	removed, err := s.Prune(context.Background())
	if err != nil || len(removed) != 1 || removed[0] != audittrail.SegmentName(day1) {
		t.Fatalf("Prune = %v, %v; want the first day's segment", removed, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.RunRetention(context.Background(), time.Hour); !errors.Is(err, auditsvc.ErrClosed) {
		t.Fatalf("RunRetention after Close = %v, want ErrClosed", err)
	}
	if err := auditsvc.VerifyCommand(context.Background(), e.dir, io.Discard); err != nil {
		t.Fatalf("VerifyCommand: %v", err)
	}
}
