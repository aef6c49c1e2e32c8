package audittrail_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/examples/internal/audittrail"
)

// TestConcurrentAppends: 8 goroutines append 500 records each, redeliver
// their own and each other's events, and cross midnight half way. Every
// event is recorded exactly once, seq has no gap, the chain is intact.
func TestConcurrentAppends(t *testing.T) {
	const goroutines, perG, common = 8, 500, 20
	dir := t.TempDir()
	var calls atomic.Int64
	clock := func() time.Time { // midnight after 2000 records
		if calls.Add(1) > goroutines*perG/2 {
			return day0.AddDate(0, 0, 1)
		}
		return day0
	}
	tr := open(t, dir, audittrail.Clock(clock))
	ctx := context.Background()
	shared := make([]audittrail.Entry, common)
	for i := range shared {
		shared[i] = tinyEntry("shared", i)
	}

	var sharedWins atomic.Int64
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			job := fmt.Sprintf("job-%d", g)
			var mine []audittrail.Entry
			for i := range perG {
				e := tinyEntry(job, i)
				if ok, err := tr.Append(ctx, e); !ok || err != nil {
					t.Errorf("Append = %v, %v", ok, err)
					return
				}
				mine = append(mine, e)
				if i%50 == 0 { // redeliver one of ours
					if ok, err := tr.Append(ctx, mine[i/2]); ok || err != nil {
						t.Errorf("redelivery = %v, %v", ok, err)
					}
				}
				if i%25 == 0 { // everyone delivers the shared events
					ok, err := tr.Append(ctx, shared[(i/25+g)%common])
					if err != nil {
						t.Error(err)
					}
					if ok {
						sharedWins.Add(1)
					}
				}
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	for _, e := range shared {
		if ok, err := tr.Append(ctx, e); ok || err != nil {
			if ok {
				sharedWins.Add(1)
			}
		}
	}
	if sharedWins.Load() != common {
		t.Fatalf("shared events appended %d times, want %d", sharedWins.Load(), common)
	}
	const total = goroutines*perG + common
	if tr.Len() != total {
		t.Fatalf("Len = %d, want %d", tr.Len(), total)
	}
	for g := range goroutines {
		recs, err := tr.ByJob(ctx, fmt.Sprintf("job-%d", g))
		if err != nil || len(recs) != perG {
			t.Fatalf("ByJob = %d records, %v", len(recs), err)
		}
		for i := 1; i < len(recs); i++ {
			if recs[i].Seq <= recs[i-1].Seq {
				t.Fatal("ByJob out of order")
			}
		}
	}
	st := tr.Stats()
	t.Logf("stats %+v: %.1f records per fsync", st, float64(st.Appended)/float64(st.Syncs))
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	for id, n := range countIDs(t, dir) {
		if n != 1 {
			t.Fatalf("event %s recorded %d times", id, n)
		}
	}
	rep := verifyOK(t, dir)
	if rep.Records != total || rep.LastSeq != total || len(rep.Segments) != 2 {
		t.Fatalf("report = %+v", rep)
	}
}
