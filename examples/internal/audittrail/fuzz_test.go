package audittrail_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cosmic-horizons/events/examples/internal/audittrail"
)

// FuzzTail appends arbitrary bytes to the newest segment of a valid trail.
// Whatever they are, VerifyDir and Open must not panic, and Open must
// repair exactly what VerifyDir calls a torn tail: a trail that verified
// (torn tail or not) verifies cleanly after Open and an Append, and a
// broken one stays broken.
func FuzzTail(f *testing.F) {
	tmpl := f.TempDir()
	segs, _ := buildTrail(f, tmpl, 1, 3)
	base, err := os.ReadFile(segs[0])
	if err != nil {
		f.Fatal(err)
	}
	ls := bytes.SplitAfter(base, []byte("\n"))
	f.Add([]byte(nil))
	f.Add([]byte(`{"seq":4,"pr`))
	f.Add(make([]byte, 512))
	f.Add([]byte("\n"))
	f.Add([]byte("garbage\n{\"seq\":"))
	f.Add(ls[0])                                                // a copy of record 1
	f.Add(append(bytes.Clone(ls[1][:len(ls[1])-1]), 'x', '\n')) // record 2 joined to junk
	f.Fuzz(func(t *testing.T, tail []byte) {
		dir := t.TempDir()
		seg := filepath.Join(dir, filepath.Base(segs[0]))
		if err := os.WriteFile(seg, append(bytes.Clone(base), tail...), 0o640); err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		before, err := audittrail.VerifyDir(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		tr, err := audittrail.Open(dir, audittrail.Clock(newClock(day0).Now))
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		if _, err := tr.Append(ctx, tinyEntry("job-f", 1)); err != nil {
			t.Fatalf("Append: %v", err)
		}
		if err := tr.Close(); err != nil {
			t.Fatal(err)
		}
		after, err := audittrail.VerifyDir(ctx, dir)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case before.OK() && (!after.OK() || after.TornTail != nil):
			t.Fatalf("verified before Open (%+v), not after: %s %+v", before.TornTail, after.Broken, after.TornTail)
		case !before.OK() && after.OK():
			t.Fatalf("broken before Open (%s), intact after", before.Broken)
		}
	})
}
