package audittrail_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/cosmic-horizons/events/examples/internal/audittrail"
)

// TestReadDir reads a closed trail of three daily segments back in trail
// order; a last line cut short is left out (a writer may be mid-append); a
// complete line that is not a record is ErrCorrupt naming segment and line.
func TestReadDir(t *testing.T) {
	dir := t.TempDir()
	segs, entries := buildTrail(t, dir, 3, 4)
	recs, err := audittrail.ReadDir(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != len(entries) {
		t.Fatalf("ReadDir read %d records, want %d", len(recs), len(entries))
	}
	for i, r := range recs {
		if r.Seq != uint64(i+1) || r.EventID != entries[i].EventID {
			t.Fatalf("record %d: seq %d, event %s; want %d, %s", i, r.Seq, r.EventID, i+1, entries[i].EventID)
		}
	}

	last := segs[len(segs)-1]
	rewrite(t, last, func(b []byte) []byte { return append(b, `{"seq":13,"prev":"`...) })
	if recs, err := audittrail.ReadDir(context.Background(), dir); err != nil || len(recs) != len(entries) {
		t.Fatalf("with a partial last line: %d records, %v; want %d, nil", len(recs), err, len(entries))
	}

	rewrite(t, segs[1], func(b []byte) []byte { return append([]byte("not a record\n"), b...) })
	_, err = audittrail.ReadDir(context.Background(), dir)
	if !errors.Is(err, audittrail.ErrCorrupt) || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("with a garbage line: %v, want ErrCorrupt naming line 1", err)
	}

	if _, err := audittrail.ReadDir(context.Background(), dir+"/missing"); err == nil {
		t.Fatal("ReadDir of a missing directory: no error")
	}
	if recs, err := audittrail.ReadDir(context.Background(), t.TempDir()); err != nil || len(recs) != 0 {
		t.Fatalf("an empty trail: %v, %v", recs, err)
	}
}
