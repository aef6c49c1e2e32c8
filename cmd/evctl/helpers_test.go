package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/eventmodels"
)

// testTimeout bounds every command and wait of these tests.
const testTimeout = 60 * time.Second

// result is what one evctl run printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

// evctl runs the tool in-process with args and faults f.
func evctl(t *testing.T, f faults, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var out, errb bytes.Buffer
	code := runWith(ctx, args, &env{stdout: &out, stderr: &errb, now: time.Now, faults: f})
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// mustRun runs evctl and fails the test unless it exits 0.
func mustRun(t *testing.T, args ...string) result {
	t.Helper()
	r := evctl(t, faults{}, args...)
	if r.code != 0 {
		t.Fatalf("evctl %s: exit %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), r.code, r.stdout, r.stderr)
	}
	return r
}

// jsonLines decodes the JSON lines of dlq show / tail --json.
func jsonLines(t *testing.T, s string) []messageView {
	t.Helper()
	var out []messageView
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var v messageView
		if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
			t.Fatalf("not a JSON line: %v: %s", err, sc.Text())
		}
		out = append(out, v)
	}
	return out
}

func decodeJSON[T any](t *testing.T, s string) T {
	t.Helper()
	var v T
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatalf("decode JSON: %v\n%s", err, s)
	}
	return v
}

// failedEvents returns n job.failed events of keys j-0..j-(n-1).
func failedEvents(n int) []eventmodels.Event {
	out := make([]eventmodels.Event, n)
	for i := range n {
		out[i] = eventmodels.NewJobFailed("u-1", fmt.Sprintf("j-%d", i), eventmodels.StatusRunning, eventmodels.ErrorUser, "exit 1")
	}
	return out
}

// syncBuffer is a bytes.Buffer safe to read while a command writes it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling a condition, not standing in for one
	}
}

// startTail runs evctl tail in the background and returns once it is
// following; wait returns its result.
func startTail(t *testing.T, args ...string) (stdout *syncBuffer, wait func() result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	out, errb := &syncBuffer{}, &syncBuffer{}
	done := make(chan int, 1)
	go func() {
		done <- runWith(ctx, append([]string{"tail"}, args...), &env{stdout: out, stderr: errb, now: time.Now})
	}()
	t.Cleanup(cancel)
	waitFor(t, "tail to start", func() bool {
		select {
		case code := <-done:
			t.Fatalf("tail exited %d before following: %s", code, errb.String())
		default:
		}
		return strings.Contains(errb.String(), "evctl: tailing")
	})
	return out, func() result {
		select {
		case code := <-done:
			return result{code: code, stdout: out.String(), stderr: errb.String()}
		case <-ctx.Done():
			t.Fatalf("tail did not end: %s", errb.String())
			return result{}
		}
	}
}
