package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/audittrail"
	"github.com/cosmic-horizons/events/testkit"
)

// TestVerifySubcommand: `audit verify` exits 0 on an intact trail and 1 once
// a byte of a segment changed.
func TestVerifySubcommand(t *testing.T) {
	dir := t.TempDir()
	tr, err := audittrail.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	codec := eventmodels.NewJSONCodec(eventmodels.NewRegistry(), 0)
	for _, e := range testkit.NewEventBuilder(7).Events(20) {
		entry, err := audittrail.NewEntry("job-lifecycle", e, codec)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := tr.Append(context.Background(), entry); err != nil {
			t.Fatal(err)
		}
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if code := verify([]string{"--dir", dir}); code != 0 {
		t.Fatalf("verify of an intact trail exited %d, want 0", code)
	}
	segs, _ := filepath.Glob(filepath.Join(dir, "*.log"))
	if len(segs) == 0 {
		segs, _ = filepath.Glob(filepath.Join(dir, "*"))
	}
	var seg string
	for _, s := range segs {
		if fi, err := os.Stat(s); err == nil && fi.Mode().IsRegular() && fi.Size() > 200 {
			seg = s
			break
		}
	}
	if seg == "" {
		t.Fatalf("no segment file in %s: %v", dir, segs)
	}
	b, err := os.ReadFile(seg)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0x01
	if err := os.WriteFile(seg, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if code := verify([]string{"--dir", dir}); code != 1 {
		t.Fatalf("verify of a tampered trail exited %d, want 1", code)
	}
	if code := verify([]string{"--no-such-flag"}); code != 2 {
		t.Fatalf("verify with a bad flag exited %d, want 2", code)
	}
}
