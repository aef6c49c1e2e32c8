package audittrail_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cosmic-horizons/events/examples/internal/audittrail"
)

func TestVerifyIntact(t *testing.T) {
	dir := t.TempDir()
	buildTrail(t, dir, 3, 4)
	rep := verifyOK(t, dir)
	if rep.Records != 12 || len(rep.Segments) != 3 || rep.LastSeq != 12 || rep.Anchor != nil {
		t.Fatalf("report = %+v", rep)
	}
	if rep, err := audittrail.VerifyDir(context.Background(), t.TempDir()); err != nil || !rep.OK() || rep.Records != 0 {
		t.Fatalf("empty dir: %+v, %v", rep, err)
	}
}

// rehash replaces a line's body with edit(body) and stores the right hash
// for it, as a forger who knows the format would.
func rehash(t *testing.T, line []byte, edit func([]byte) []byte) []byte {
	t.Helper()
	l := line[:len(line)-1]
	body := edit(append(l[:len(l)-75:len(l)-75], '}'))
	prev := string(body[bytes.Index(body, []byte(`"prev":"`))+8:][:64])
	h := audittrail.ChainHash(prev, body)
	return append(append(body[:len(body)-1:len(body)-1], `,"hash":"`+h+`"}`...), '\n')
}

func TestVerifyNamesFirstBrokenRecord(t *testing.T) {
	// 3 segments of 4 records: segment 2 holds seq 5 to 8.
	type want struct {
		seg     int // 1-based segment index, 0 for the anchor file
		line    int
		seq     uint64
		problem audittrail.Problem
	}
	for _, tc := range []struct {
		name   string
		tamper func(t *testing.T, dir string, segs []string)
		want   want
	}{
		{"byte flipped in the middle of segment 2", func(t *testing.T, _ string, segs []string) {
			rewrite(t, segs[1], func(b []byte) []byte {
				ls := bytes.SplitAfter(b, []byte("\n"))
				i := bytes.Index(ls[1], []byte(`"user_id":"user-7"`)) + len(`"user_id":"user-`)
				ls[1][i] ^= 0x01 // '7' becomes '6'
				return bytes.Join(ls, nil)
			})
		}, want{2, 2, 6, audittrail.ProblemHashMismatch}},
		{"record deleted", func(t *testing.T, _ string, segs []string) {
			editLines(t, segs[1], func(ls [][]byte) [][]byte { return append(ls[:1:1], ls[2:]...) })
		}, want{2, 2, 7, audittrail.ProblemSeqGap}},
		{"two records swapped", func(t *testing.T, _ string, segs []string) {
			editLines(t, segs[1], func(ls [][]byte) [][]byte { ls[1], ls[2] = ls[2], ls[1]; return ls })
		}, want{2, 2, 7, audittrail.ProblemSeqGap}},
		{"record duplicated", func(t *testing.T, _ string, segs []string) {
			editLines(t, segs[1], func(ls [][]byte) [][]byte { return append(ls[:2:2], append([][]byte{ls[1]}, ls[2:]...)...) })
		}, want{2, 3, 6, audittrail.ProblemSeqGap}},
		{"record edited and rehashed", func(t *testing.T, _ string, segs []string) {
			editLines(t, segs[1], func(ls [][]byte) [][]byte {
				ls[1] = rehash(t, ls[1], func(b []byte) []byte { return bytes.Replace(b, []byte("user-7"), []byte("user-8"), 1) })
				return ls
			})
		}, want{2, 3, 7, audittrail.ProblemPrevMismatch}},
		{"segment 2 truncated between records", func(t *testing.T, _ string, segs []string) {
			editLines(t, segs[1], func(ls [][]byte) [][]byte { return ls[:2] })
		}, want{3, 1, 9, audittrail.ProblemSeqGap}},
		{"segment 2 truncated inside a record", func(t *testing.T, _ string, segs []string) {
			editLines(t, segs[1], func(ls [][]byte) [][]byte { ls[2] = ls[2][:len(ls[2])/2]; return ls[:3] })
		}, want{2, 3, 0, audittrail.ProblemUnparsable}},
		{"segment 2 deleted", func(t *testing.T, _ string, segs []string) {
			remove(t, segs[1])
		}, want{3, 1, 9, audittrail.ProblemSeqGap}},
		{"segment 1 deleted without an anchor", func(t *testing.T, _ string, segs []string) {
			remove(t, segs[0])
		}, want{2, 1, 5, audittrail.ProblemSeqGap}},
		{"garbage line inserted in the newest segment", func(t *testing.T, _ string, segs []string) {
			editLines(t, segs[2], func(ls [][]byte) [][]byte { return append(ls[:1:1], append([][]byte{[]byte("{}\n")}, ls[1:]...)...) })
		}, want{3, 2, 0, audittrail.ProblemUnparsable}},
		{"anchor file unreadable", func(t *testing.T, dir string, _ []string) {
			if err := os.WriteFile(filepath.Join(dir, audittrail.AnchorFile), []byte("{"), 0o640); err != nil {
				t.Fatal(err)
			}
		}, want{0, 0, 0, audittrail.ProblemUnparsable}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			segs, _ := buildTrail(t, dir, 3, 4)
			tc.tamper(t, dir, segs)
			rep, err := audittrail.VerifyDir(context.Background(), dir)
			if err != nil {
				t.Fatal(err)
			}
			b := rep.Broken
			if b == nil {
				t.Fatalf("tampering not detected: %+v", rep)
			}
			wantSeg := audittrail.AnchorFile
			if tc.want.seg > 0 {
				wantSeg = filepath.Base(segs[tc.want.seg-1])
			}
			if b.Segment != wantSeg || b.Line != tc.want.line || b.Seq != tc.want.seq || b.Problem != tc.want.problem {
				t.Fatalf("broken = %s\nwant %s line %d seq %d %s", b, wantSeg, tc.want.line, tc.want.seq, tc.want.problem)
			}
			t.Log(b)
		})
	}
}

// TestVerifyDetectsEveryByteFlip flips each byte of a trail in turn. Any
// flip must be reported at the line holding the byte; in the last line of
// the newest segment it may instead show as a torn tail, since a record
// cut or garbled there is what a crash leaves.
func TestVerifyDetectsEveryByteFlip(t *testing.T) {
	dir := t.TempDir()
	segs, _ := buildTrail(t, dir, 3, 2)
	ctx := context.Background()
	for si, seg := range segs {
		orig, err := os.ReadFile(seg)
		if err != nil {
			t.Fatal(err)
		}
		// Flip in place: rewriting the file would make ext4 flush it
		// every time (auto_da_alloc), which is slow.
		f, err := os.OpenFile(seg, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		lastLineStart := bytes.LastIndexByte(orig[:len(orig)-1], '\n') + 1
		line := 1
		for i := range orig {
			if _, err := f.WriteAt([]byte{orig[i] ^ 0x01}, int64(i)); err != nil {
				t.Fatal(err)
			}
			rep, err := audittrail.VerifyDir(ctx, dir)
			if err != nil {
				t.Fatal(err)
			}
			inTail := si == len(segs)-1 && i >= lastLineStart
			switch {
			case inTail && (rep.Broken != nil || rep.TornTail != nil):
			case rep.Broken == nil:
				t.Fatalf("%s byte %d (line %d) flipped: not detected", filepath.Base(seg), i, line)
			case rep.Broken.Segment != filepath.Base(seg) || rep.Broken.Line != line:
				t.Fatalf("%s byte %d (line %d) flipped: reported %s", filepath.Base(seg), i, line, rep.Broken)
			}
			if _, err := f.WriteAt(orig[i:i+1], int64(i)); err != nil {
				t.Fatal(err)
			}
			if orig[i] == '\n' {
				line++
			}
		}
		if err := f.Close(); err != nil {
			t.Fatal(err)
		}
	}
	verifyOK(t, dir)
}

func TestTrailVerify(t *testing.T) {
	dir := t.TempDir()
	tr := open(t, dir, audittrail.Clock(newClock(day0).Now))
	ctx := context.Background()
	for i := range 3 {
		mustAppend(t, tr, jobEntry(t, "j", float64(i)))
	}

	t.Run("concurrent with appends", func(t *testing.T) {
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := range 200 {
				mustAppend(t, tr, jobEntry(t, "j", float64(i)))
			}
		})
		for range 5 {
			rep, err := tr.Verify(ctx)
			if err != nil || !rep.OK() {
				t.Errorf("Verify = %+v, %v", rep, err)
			}
		}
		wg.Wait()
	})

	t.Run("last record removed under the trail", func(t *testing.T) {
		seg := filepath.Join(dir, audittrail.SegmentName(day0))
		editLines(t, seg, func(ls [][]byte) [][]byte { return ls[:len(ls)-1] })
		rep, err := tr.Verify(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Broken == nil || rep.Broken.Problem != audittrail.ProblemMissingTail {
			t.Fatalf("Verify = %+v, want a missing tail", rep)
		}
		t.Log(rep.Broken)
	})
}

func editLines(t *testing.T, path string, f func([][]byte) [][]byte) {
	t.Helper()
	ls := lines(t, path)
	if err := os.WriteFile(path, bytes.Join(f(ls), nil), 0o640); err != nil {
		t.Fatal(err)
	}
}

func remove(t *testing.T, path string) {
	t.Helper()
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
}
