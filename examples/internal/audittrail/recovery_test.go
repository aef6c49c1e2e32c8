package audittrail_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/examples/internal/audittrail"
)

func TestTornTailCutOnOpen(t *testing.T) {
	for _, tc := range []struct {
		name string
		tear func([]byte) []byte
		keep int // records left of the 3 written
	}{
		{"garbage without newline", func(b []byte) []byte { return append(b, `{"seq":4,"prev":"00`...) }, 3},
		{"last line cut in half", func(b []byte) []byte { return b[:len(b)-200] }, 2},
		{"last record without its newline", func(b []byte) []byte { return b[:len(b)-1] }, 2},
		{"last record then zero fill", func(b []byte) []byte { return append(b[:len(b)-1], make([]byte, 300)...) }, 2},
		{"last record, zero fill, then a fragment", func(b []byte) []byte {
			return append(append(b[:len(b)-1], make([]byte, 100)...), `{"seq":4,"prev":"`...)
		}, 2},
		{"zero-filled block", func(b []byte) []byte { return append(b, make([]byte, 4096)...) }, 3},
		{"newline-terminated garbage", func(b []byte) []byte { return append(b, "\x00\x00garbage\n"...) }, 3},
		{"several bad lines", func(b []byte) []byte { return append(b, "{}\n\n{\"seq\":9\n{\"se"...) }, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			segs, entries := buildTrail(t, dir, 1, 3)
			seg := segs[0]
			orig, err := os.ReadFile(seg)
			if err != nil {
				t.Fatal(err)
			}
			torn := tc.tear(bytes.Clone(orig))
			if err := os.WriteFile(seg, torn, 0o640); err != nil {
				t.Fatal(err)
			}
			rep, err := audittrail.VerifyDir(context.Background(), dir)
			if err != nil || !rep.OK() || rep.TornTail == nil || rep.Records != tc.keep {
				t.Fatalf("VerifyDir before repair = %+v, %v; want a torn tail after %d records", rep, err, tc.keep)
			}

			var logs logBuffer
			tr := open(t, dir, audittrail.Clock(newClock(day0).Now), audittrail.Logger(logs.logger()))
			if !contains(logs.String(), "torn tail") {
				t.Fatalf("repair not logged: %s", logs.String())
			}
			if tr.Len() != tc.keep {
				t.Fatalf("Len = %d, want %d", tr.Len(), tc.keep)
			}
			// The cut bytes are kept beside the segment.
			q, _ := filepath.Glob(seg + ".torn-*")
			if len(q) != 1 {
				t.Fatalf("quarantine files: %v", q)
			}
			cut, _ := os.ReadFile(q[0])
			kept, _ := os.ReadFile(seg)
			if !bytes.Equal(append(kept, cut...), torn) {
				t.Fatal("segment + quarantined bytes != torn file")
			}
			verifyOK(t, dir)

			mustAppend(t, tr, tinyEntry("job-0", 99))
			if seq, _ := tr.Last(); seq != uint64(tc.keep+1) {
				t.Fatalf("new record has seq %d, want %d", seq, tc.keep+1)
			}
			for i, e := range entries {
				if tr.Has(e.EventID) != (i < tc.keep) {
					t.Fatalf("Has(record %d) = %v", i+1, !(i < tc.keep))
				}
			}
			if err := tr.Close(); err != nil {
				t.Fatal(err)
			}
			if rep := verifyOK(t, dir); rep.Records != tc.keep+1 {
				t.Fatalf("Records = %d", rep.Records)
			}
		})
	}
}

// TestOpenDoesNotRepairBreaks: damage that a crash cannot cause stays on
// disk for Verify to report, and the trail keeps working.
func TestOpenDoesNotRepairBreaks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
		line   int
		len    int // records indexed after Open
	}{
		{"byte flipped in a middle record", func(b []byte) []byte {
			i := bytes.Index(b, []byte(`"n":1`)) + 4
			b[i] = '7'
			return b
		}, 2, 3},
		{"middle record unparsable", func(b []byte) []byte {
			i := bytes.Index(b, []byte(`"n":1`))
			b[i] = '{'
			return b
		}, 2, 2},
		{"newline between the last two records changed", func(b []byte) []byte {
			i := bytes.LastIndexByte(b[:len(b)-1], '\n')
			b[i] = 0x0b
			return b
		}, 2, 1},
		{"final newline changed", func(b []byte) []byte {
			b[len(b)-1] = 'x'
			return b
		}, 3, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			segs, _ := buildTrail(t, dir, 1, 3)
			rewrite(t, segs[0], tc.damage)
			damaged, _ := os.ReadFile(segs[0])
			check := func(when string) {
				t.Helper()
				rep, err := audittrail.VerifyDir(context.Background(), dir)
				if err != nil || rep.OK() || rep.Broken.Line != tc.line {
					t.Fatalf("VerifyDir %s = %+v, %v; want a break at line %d", when, rep, err, tc.line)
				}
			}
			check("before Open")

			var logs logBuffer
			tr := open(t, dir, audittrail.Clock(newClock(day0).Now), audittrail.Logger(logs.logger()))
			if tr.Len() != tc.len {
				t.Fatalf("Len = %d, want %d", tr.Len(), tc.len)
			}
			if !contains(logs.String(), "Verify will report it") {
				t.Fatalf("damage not logged: %s", logs.String())
			}
			now, _ := os.ReadFile(segs[0])
			if !bytes.HasPrefix(now, damaged) {
				t.Fatal("Open changed the damaged bytes")
			}
			mustAppend(t, tr, tinyEntry("job-0", 99))
			if err := tr.Close(); err != nil {
				t.Fatal(err)
			}
			check("after Open and Append")
		})
	}
}

// TestCrashLosesNothingAcknowledged runs appenders, kills the trail in
// the middle (no Close, no final fsync), throws away everything the last
// fsync did not cover — cutting at a random byte, often inside a record —
// sometimes adds garbage, reopens, and checks that every Append that
// returned (true, nil) is there exactly once and the chain is intact.
func TestCrashLosesNothingAcknowledged(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	dir := t.TempDir()
	clk := newClock(day0)
	var acked []string
	for round := range 6 {
		clk.Add(8 * time.Hour) // a new segment every third round
		tr, err := audittrail.Open(dir, audittrail.Clock(clk.Now))
		if err != nil {
			t.Fatalf("round %d: Open: %v", round, err)
		}
		var (
			mu    sync.Mutex
			total atomic.Int64
			kill  sync.Once
			seg   string
			size  int64
			wg    sync.WaitGroup
		)
		limit := 100 + rng.Int64N(200)
		for range 8 {
			wg.Go(func() {
				for i := 0; ; i++ {
					e := tinyEntry("job-crash", i)
					if i%10 == 9 { // a redelivery
						mu.Lock()
						if len(acked) > 0 {
							e.EventID = uuidOf(t, acked[i%len(acked)])
						}
						mu.Unlock()
					}
					ok, err := tr.Append(context.Background(), e)
					if err != nil {
						if !errors.Is(err, audittrail.ErrClosed) {
							t.Errorf("Append: %v", err)
						}
						return
					}
					if ok {
						mu.Lock()
						acked = append(acked, e.EventID.String())
						mu.Unlock()
					}
					if total.Add(1) >= limit {
						kill.Do(func() { seg, size = tr.Kill() })
					}
				}
			})
		}
		wg.Wait()

		// What the disk kept: the fsynced part, then an arbitrary part of
		// the rest, then maybe garbage.
		st, err := os.Stat(seg)
		if err != nil {
			t.Fatal(err)
		}
		cut := size + rng.Int64N(st.Size()-size+1)
		if err := os.Truncate(seg, cut); err != nil {
			t.Fatal(err)
		}
		if rng.IntN(2) == 0 {
			f, _ := os.OpenFile(seg, os.O_WRONLY|os.O_APPEND, 0)
			f.Write(make([]byte, rng.IntN(600)))
			f.Write([]byte(`{"seq":`)[:rng.IntN(7)])
			f.Close()
		}

		tr, err = audittrail.Open(dir, audittrail.Clock(clk.Now))
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		counts := countIDs(t, dir)
		for _, id := range acked {
			if counts[id] != 1 {
				t.Fatalf("round %d: acknowledged event %s recorded %d times", round, id, counts[id])
			}
		}
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
		rep := verifyOK(t, dir)
		if rep.Records != len(counts) {
			t.Fatalf("round %d: %d records, %d distinct events", round, rep.Records, len(counts))
		}
		t.Logf("round %d: %d acknowledged so far, %d records on disk, cut %d of %d unsynced bytes", round, len(acked), rep.Records, st.Size()-cut, st.Size()-size)
	}
}

// Open fsyncs the newest segment it loaded before it counts its records as
// durable. A process that crashed (rather than the machine) leaves
// unsynced writes in the page cache, where Open reads them; without the
// fsync, a redelivery of such a record would be acknowledged as a
// duplicate (Append's (false, nil) means durable) while the record could
// still be lost to a power failure.
func TestOpenSyncsWhatItLoads(t *testing.T) {
	dir := t.TempDir()
	if tr := open(t, dir); tr.Stats().Syncs != 0 {
		t.Fatalf("empty trail: Syncs = %d after Open, want 0", tr.Stats().Syncs)
	} else if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	_, entries := buildTrail(t, dir, 2, 3)
	clk := newClock(day0.AddDate(0, 0, 1))
	tr := open(t, dir, audittrail.Clock(clk.Now))
	st := tr.Stats()
	if st.Syncs != 1 || st.DurableSeq != 6 || st.LastSeq != 6 {
		t.Fatalf("Stats after Open = %+v, want one fsync covering seq 6", st)
	}
	// A redelivery of a loaded record: acknowledged without another fsync,
	// because Open made it durable.
	ok, err := tr.Append(context.Background(), entries[5])
	if err != nil || ok {
		t.Fatalf("redelivery: Append = %v, %v; want false, nil", ok, err)
	}
	if st := tr.Stats(); st.Syncs != 1 || st.Duplicates != 1 {
		t.Fatalf("Stats after the redelivery = %+v", st)
	}
}
