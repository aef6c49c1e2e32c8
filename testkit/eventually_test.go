package testkit_test

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/testkit"
)

func TestEventuallyReturnsOnceTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	go func() {
		for range 5 {
			n.Add(1)
		}
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	testkit.Eventually(ctx, t, "five increments", func() bool { return n.Load() == 5 })
}

// fatalRecorder records Fatalf instead of stopping the goroutine's test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (f *fatalRecorder) Helper() {}
func (f *fatalRecorder) Fatalf(format string, args ...any) {
	f.msg = format
	for _, a := range args {
		if s, ok := a.(string); ok {
			f.msg += " " + s
		}
	}
	panic(f) // stop Eventually as t.Fatalf's runtime.Goexit would
}

func TestEventuallyFailsWhenCtxEnds(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	rec := &fatalRecorder{TB: t}
	func() {
		defer func() {
			if r := recover(); r != rec {
				t.Fatalf("Eventually did not fail the test: %v", r)
			}
		}()
		testkit.Eventually(ctx, rec, "a condition that never holds", func() bool { return false })
	}()
	if !strings.Contains(rec.msg, "a condition that never holds") {
		t.Errorf("failure %q does not name what it waited for", rec.msg)
	}
}
