package audittrail_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/examples/internal/audittrail"
)

func TestPrune(t *testing.T) {
	dir := t.TempDir()
	clk := newClock(day0)
	tr := open(t, dir, audittrail.Clock(clk.Now)) // default retention: 90 days
	ctx := context.Background()
	var old []audittrail.Entry
	for _, d := range []struct {
		day  int
		jobs []string
	}{{0, []string{"a", "a"}}, {1, []string{"a", "b"}}, {2, []string{"b"}}, {60, []string{"a", "a"}}, {95, []string{"c"}}} {
		clk.Set(day0.AddDate(0, 0, d.day))
		for _, j := range d.jobs {
			e := tinyEntry(j, d.day)
			mustAppend(t, tr, e)
			if d.day <= 2 {
				old = append(old, e)
			}
		}
	}
	var lastOld string
	{
		recs, _ := tr.ByJob(ctx, "b")
		lastOld = recs[len(recs)-1].Hash // seq 5, the last record of day 2
	}

	// Day 95, 18:00: the cutoff is day 5 18:00, so days 0 to 2 go and
	// day 60 stays.
	clk.Set(day0.AddDate(0, 0, 95).Add(9 * time.Hour))
	removed, err := tr.Prune(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{audittrail.SegmentName(day0), audittrail.SegmentName(day0.AddDate(0, 0, 1)), audittrail.SegmentName(day0.AddDate(0, 0, 2))}
	if !slices.Equal(removed, want) {
		t.Fatalf("removed %v, want %v", removed, want)
	}
	for _, name := range want {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Fatalf("%s still there: %v", name, err)
		}
	}
	var a audittrail.Anchor
	b, err := os.ReadFile(filepath.Join(dir, audittrail.AnchorFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &a); err != nil || a.Seq != 5 || a.Hash != lastOld || a.Segment != want[2] {
		t.Fatalf("anchor = %+v, %v", a, err)
	}

	rep, err := tr.Verify(ctx)
	if err != nil || !rep.OK() || rep.Anchor == nil || rep.Records != 3 || rep.LastSeq != 8 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	if tr.Len() != 3 || tr.Has(old[0].EventID) {
		t.Fatalf("index not pruned: Len %d", tr.Len())
	}
	if recs, err := tr.ByJob(ctx, "a"); err != nil || len(recs) != 2 || recs[0].Seq != 6 {
		t.Fatalf("ByJob(a) = %+v, %v", recs, err)
	}
	if recs, err := tr.ByJob(ctx, "b"); err != nil || len(recs) != 0 {
		t.Fatalf("ByJob(b) = %+v, %v", recs, err)
	}
	// Documented: an event older than the retention is appended again.
	mustAppend(t, tr, old[0])
	if removed, err := tr.Prune(ctx); err != nil || len(removed) != 0 {
		t.Fatalf("second Prune = %v, %v", removed, err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}

	tr = open(t, dir, audittrail.Clock(clk.Now))
	if seq, _ := tr.Last(); seq != 9 {
		t.Fatalf("Last after reopen = %d", seq)
	}
	mustAppend(t, tr, tinyEntry("c", 96))
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if rep := verifyOK(t, dir); rep.Records != 5 || rep.Anchor.Seq != 5 {
		t.Fatalf("report = %+v", rep)
	}

	// Without the anchor the removed segments are a gap.
	remove(t, filepath.Join(dir, audittrail.AnchorFile))
	rep, err = audittrail.VerifyDir(ctx, dir)
	if err != nil || rep.OK() {
		t.Fatalf("VerifyDir without anchor = %+v, %v", rep, err)
	}
	if b := rep.Broken; b.Segment != audittrail.SegmentName(day0.AddDate(0, 0, 60)) || b.Line != 1 || b.Seq != 6 || b.Problem != audittrail.ProblemSeqGap {
		t.Fatalf("broken = %s", b)
	}
}

func TestPruneKeepsNewestSegment(t *testing.T) {
	dir := t.TempDir()
	clk := newClock(day0)
	tr := open(t, dir, audittrail.Clock(clk.Now), audittrail.Retention(7*24*time.Hour))
	ctx := context.Background()
	mustAppend(t, tr, tinyEntry("j", 0))
	clk.Add(24 * time.Hour)
	mustAppend(t, tr, tinyEntry("j", 1))
	clk.Add(200 * 24 * time.Hour)
	if removed, err := tr.Prune(ctx); err != nil || len(removed) != 1 || removed[0] != audittrail.SegmentName(day0) {
		t.Fatalf("Prune = %v, %v; want only the older segment", removed, err)
	}
	mustAppend(t, tr, tinyEntry("j", 2)) // a new segment; the kept one is now old
	if removed, err := tr.Prune(ctx); err != nil || len(removed) != 1 {
		t.Fatalf("Prune = %v, %v", removed, err)
	}
	rep, err := tr.Verify(ctx)
	if err != nil || !rep.OK() || rep.Records != 1 || rep.Anchor.Seq != 2 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
}

// TestPruneInterrupted: a crash after the anchor was written but before
// the segments were removed leaves segments the anchor covers. Verify
// skips them; Open removes them.
func TestPruneInterrupted(t *testing.T) {
	dir := t.TempDir()
	segs, _ := buildTrail(t, dir, 3, 2)
	leftover, err := os.ReadFile(segs[0])
	if err != nil {
		t.Fatal(err)
	}
	clk := newClock(day0.AddDate(0, 0, 3))
	tr := open(t, dir, audittrail.Clock(clk.Now), audittrail.Retention(24*time.Hour))
	if removed, err := tr.Prune(context.Background()); err != nil || len(removed) != 2 {
		t.Fatalf("Prune = %v, %v", removed, err)
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(segs[0], leftover, 0o640); err != nil {
		t.Fatal(err)
	}
	rep := verifyOK(t, dir)
	if !slices.Equal(rep.Skipped, []string{filepath.Base(segs[0])}) || rep.Records != 2 {
		t.Fatalf("report = %+v", rep)
	}
	var logs logBuffer
	open(t, dir, audittrail.Clock(clk.Now), audittrail.Logger(logs.logger()))
	if _, err := os.Stat(segs[0]); !os.IsNotExist(err) {
		t.Fatalf("leftover not removed: %v", err)
	}
	if !contains(logs.String(), "interrupted prune") {
		t.Fatalf("not logged: %s", logs.String())
	}
}
