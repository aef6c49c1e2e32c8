package audittrail_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/examples/internal/audittrail"
)

// refVerify is an independent verifier written from the package
// documentation alone, with the standard library: what an auditor's own
// tool would do. It returns the number of intact records and the segment
// and line of the first broken one ("" and 0 when intact).
func refVerify(t *testing.T, dir string) (records int, seg string, line int) {
	t.Helper()
	seq, prev, skipUpTo := uint64(1), strings.Repeat("0", 64), ""
	if b, err := os.ReadFile(filepath.Join(dir, "anchor.json")); err == nil {
		var a struct {
			Segment string `json:"segment"`
			Seq     uint64 `json:"seq"`
			Hash    string `json:"hash"`
		}
		if err := json.Unmarshal(b, &a); err != nil {
			return records, "anchor.json", 0
		}
		seq, prev, skipUpTo = a.Seq+1, a.Hash, a.Segment
	}
	names, _ := filepath.Glob(filepath.Join(dir, "segment-????-??-??.jsonl"))
	sort.Strings(names)
	for _, path := range names {
		name := filepath.Base(path)
		if name <= skipUpTo {
			continue
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		ls := strings.SplitAfter(string(data), "\n")
		if ls[len(ls)-1] == "" {
			ls = ls[:len(ls)-1]
		}
		for i, l := range ls {
			if !strings.HasSuffix(l, "\n") || len(l) < 76 {
				return records, name, i + 1
			}
			l = l[:len(l)-1]
			suffix := l[len(l)-75:]
			if !strings.HasPrefix(suffix, `,"hash":"`) || !strings.HasSuffix(suffix, `"}`) {
				return records, name, i + 1
			}
			stored, body := suffix[9:73], l[:len(l)-75]+"}"
			var r struct {
				Seq  uint64 `json:"seq"`
				Prev string `json:"prev"`
			}
			if err := json.Unmarshal([]byte(body), &r); err != nil {
				return records, name, i + 1
			}
			sum := sha256.Sum256([]byte(r.Prev + "\n" + body))
			if hex.EncodeToString(sum[:]) != stored || r.Seq != seq || r.Prev != prev {
				return records, name, i + 1
			}
			seq, prev = seq+1, stored
			records++
		}
	}
	return records, "", 0
}

func TestIndependentVerifierAgrees(t *testing.T) {
	dir := t.TempDir()
	segs, _ := buildTrail(t, dir, 4, 3)
	clk := newClock(day0.AddDate(0, 0, 5))
	tr := open(t, dir, audittrail.Clock(clk.Now), audittrail.Retention(3*24*time.Hour))
	// Day 5 09:30 minus 3 days: the days ending by day 2 09:30 go.
	if removed, err := tr.Prune(context.Background()); err != nil || len(removed) != 2 {
		t.Fatalf("Prune = %v, %v", removed, err)
	}
	mustAppend(t, tr, jobEntry(t, "job-x", 1)) // a real event, escaped characters and all
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	rep := verifyOK(t, dir)
	if n, seg, _ := refVerify(t, dir); n != rep.Records || seg != "" {
		t.Fatalf("reference verifier: %d records, broken at %q; package: %d records", n, seg, rep.Records)
	}

	editLines(t, segs[2], func(ls [][]byte) [][]byte {
		ls[1] = []byte(strings.Replace(string(ls[1]), `"n":7`, `"n":8`, 1))
		return ls
	})
	rep, err := audittrail.VerifyDir(context.Background(), dir)
	if err != nil || rep.OK() {
		t.Fatalf("VerifyDir = %+v, %v", rep, err)
	}
	if _, seg, line := refVerify(t, dir); seg != rep.Broken.Segment || line != rep.Broken.Line || line != 2 {
		t.Fatalf("reference verifier broken at %s:%d, package at %s", seg, line, rep.Broken)
	}
}
