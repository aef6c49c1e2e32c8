package system_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/examples/internal/orchestrator"
	"github.com/cosmic-horizons/events/examples/internal/platform"
	"github.com/cosmic-horizons/events/examples/internal/system"
	"github.com/cosmic-horizons/events/testkit"
)

// syncBuffer is a strings.Builder safe for the progress goroutine and the
// test.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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

// startSlow starts a system on the in-memory paths whose jobs take about
// a second each, with progress in plain lines to out.
func startSlow(t *testing.T, ctx context.Context, jobs int, out *syncBuffer) *system.System {
	t.Helper()
	p, err := platform.Open(ctx, platform.Options{MemoryOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	var steps []string
	sys, err := system.Start(ctx, system.Config{
		Platform: p, Jobs: jobs, AuditDir: t.TempDir(), HealthInterval: 100 * time.Millisecond,
		Sim:      orchestrator.SimConfig{Seed: 5, Speed: 12},
		Progress: out, ProgressLines: true, ProgressEvery: 50 * time.Millisecond,
		Step: func(what string) { steps = append(steps, what) },
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Stop(context.Background()) })
	if len(steps) < 5 || !strings.Contains(strings.Join(steps, "\n"), "metrics service") {
		t.Errorf("Start announced %q, want a step per service", steps)
	}
	return sys
}

// TestProgressLinesArePlain: with ProgressLines (the demo's output is not
// a terminal) the progress is whole lines, without a carriage return or an
// escape sequence, several while the jobs run.
func TestProgressLinesArePlain(t *testing.T) {
	ctx := testkit.TimeoutContext(t, time.Minute)
	var out syncBuffer
	sys := startSlow(t, ctx, 4, &out)
	sum, err := sys.Run(ctx)
	if err != nil || !sum.OK() {
		t.Fatalf("Run = %+v, %v", sum, err)
	}
	got := out.String()
	if strings.ContainsAny(got, "\r\x1b") {
		t.Fatalf("progress has a carriage return or an escape: %q", got)
	}
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) < 2 || !strings.HasSuffix(got, "\n") {
		t.Fatalf("progress = %q, want several whole lines", got)
	}
	for _, l := range lines {
		if !strings.Contains(l, "/4 jobs | queued") {
			t.Errorf("progress line %q does not report the jobs", l)
		}
	}
}

// TestServeDuringRun is the demo's --serve: Serve called before Run
// answers while the jobs run (a job is seen running over HTTP before Run
// returns), and keeps serving after it.
func TestServeDuringRun(t *testing.T) {
	ctx := testkit.TimeoutContext(t, time.Minute)
	var out syncBuffer
	sys := startSlow(t, ctx, 4, &out)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	sctx, stopServing := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- sys.Serve(sctx, ln) }()
	t.Cleanup(func() {
		stopServing()
		if err := <-served; err != nil {
			t.Errorf("Serve = %v", err)
		}
	})
	ran := make(chan error, 1)
	go func() {
		sum, err := sys.Run(ctx)
		if err == nil && !sum.OK() {
			err = context.Canceled
		}
		ran <- err
	}()

	runningSeen := false
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !runningSeen {
		select {
		case err := <-ran:
			t.Fatalf("Run returned (%v) before a running job was seen over HTTP", err)
		case <-ctx.Done():
			t.Fatal(ctx.Err())
		case <-tick.C:
		}
		var jobs []orchestrator.JobView
		if getJSON(ctx, base+"/jobs", &jobs) == http.StatusOK {
			for _, j := range jobs {
				runningSeen = runningSeen || j.Status == "running"
			}
		}
	}
	if err := <-ran; err != nil {
		t.Fatalf("Run: %v", err)
	}
	var jobs []orchestrator.JobView
	if code := getJSON(ctx, base+"/jobs", &jobs); code != http.StatusOK || len(jobs) != 4 {
		t.Fatalf("GET /jobs after the run = %d, %d jobs; want 200 and 4", code, len(jobs))
	}
}

func getJSON(ctx context.Context, url string, v any) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if json.NewDecoder(resp.Body).Decode(v) != nil {
		return 0
	}
	return resp.StatusCode
}
