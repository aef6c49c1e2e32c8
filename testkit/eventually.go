package testkit

import (
	"context"
	"testing"
	"time"
)

// EventuallyInterval is how often Eventually checks its condition.
const EventuallyInterval = 2 * time.Millisecond

// Eventually waits until cond holds, checking it every EventuallyInterval,
// and fails the test (t.Fatalf, naming what and why) when ctx ends first.
// It is for conditions that no channel signals — a consumer on another
// goroutine catching up with a known count, a backend reporting a lag — and
// must be called from the test's goroutine. For messages, prefer
// MessageCapture.WaitFor and WaitUntil, which wake on each message.
func Eventually(ctx context.Context, t testing.TB, what string, cond func() bool) {
	t.Helper()
	if cond() {
		return
	}
	tick := time.NewTicker(EventuallyInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			t.Fatalf("testkit: gave up waiting for %s: %v", what, context.Cause(ctx))
		case <-tick.C:
			if cond() {
				return
			}
		}
	}
}

// TimeoutContext returns a context that ends after d or when the test
// ends, whichever comes first: the bound for a test's waits
// (Eventually, MessageCapture.WaitFor), so a condition that never holds
// fails the test instead of hanging it.
func TimeoutContext(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}
