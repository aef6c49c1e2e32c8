package system_test

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
	"github.com/cosmic-horizons/events/examples/internal/orchestrator"
	"github.com/cosmic-horizons/events/examples/internal/platform"
	"github.com/cosmic-horizons/events/examples/internal/system"
	"github.com/cosmic-horizons/events/testkit"
)

// TestServeAfterRunReportsLiveHealthAndSignals is the demo's --serve: after
// a run, while Serve serves, /readyz answers 200 from a health round judged
// after the run ended, later rounds keep coming (the health loop runs
// again), and /signals answers with the run's consumers' handler signals,
// as every reference program serves them. Serve returns nil when its ctx
// ends.
func TestServeAfterRunReportsLiveHealthAndSignals(t *testing.T) {
	ctx := testkit.TimeoutContext(t, 2*time.Minute)
	p, err := platform.Open(ctx, platform.Options{MemoryOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	sys, err := system.Start(ctx, system.Config{
		Platform: p, Jobs: 5, AuditDir: t.TempDir(), HealthInterval: 100 * time.Millisecond,
		Sim: orchestrator.SimConfig{Seed: 3, Speed: 0},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sys.Stop(context.Background()) })
	sum, err := sys.Run(ctx)
	if err != nil || !sum.OK() {
		t.Fatalf("Run = %+v, %v", sum, err)
	}
	ended := time.Now()

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
			t.Errorf("Serve = %v, want nil after its ctx ended", err)
		}
	})

	get := func(path string, v any) int {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if err := json.Unmarshal(body, v); err != nil {
			t.Fatalf("GET %s: %d, not JSON: %v\n%s", path, resp.StatusCode, err, body)
		}
		return resp.StatusCode
	}
	var r healthsvc.Readiness
	if code := get("/readyz", &r); code != http.StatusOK || !r.Ready || !r.CheckedAt.After(ended) {
		t.Fatalf("GET /readyz after the run = %d %+v, want 200, ready, checked after the run ended (%v)", code, r, ended)
	}
	first := r.CheckedAt
	testkit.Eventually(ctx, t, "a later health round while serving", func() bool {
		return get("/readyz", &r) == http.StatusOK && r.Ready && r.CheckedAt.After(first)
	})
	var sig []healthsvc.ServiceSignals
	if code := get(healthsvc.SignalsPath, &sig); code != http.StatusOK || len(sig) == 0 {
		t.Fatalf("GET %s = %d %+v, want 200 and the signals of the run's consumers", healthsvc.SignalsPath, code, sig)
	}
	var handled int64
	for _, s := range sig {
		handled += s.Handled
	}
	if handled == 0 {
		t.Errorf("GET %s = %+v: no handled attempts, though the run's consumers handled every event", healthsvc.SignalsPath, sig)
	}
}
