package dashboard_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/browsertest"
	"github.com/cosmic-horizons/events/examples/internal/dashboard"
	"github.com/cosmic-horizons/events/examples/internal/orchestrator"
)

// ScreenshotEnv names the file the browser test writes its screenshot to;
// default a file in the test's temporary directory (logged).
const ScreenshotEnv = "DASHBOARD_SCREENSHOT"

// wsGate refuses WebSocket upgrades with 503 while closed, so a test can
// hold the page disconnected.
type wsGate struct {
	next   http.Handler
	closed atomic.Bool
}

func (g *wsGate) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/ws" && g.closed.Load() {
		http.Error(w, "gate closed by the test", http.StatusServiceUnavailable)
		return
	}
	g.next.ServeHTTP(w, r)
}

// stack is an orchestrator on memory buses behind a dashboard fed by the
// real-time bus, served over HTTP.
type stack struct {
	orch *orchestrator.Service
	dash *dashboard.Dashboard
	gate *wsGate
	srv  *httptest.Server
}

func newStack(t *testing.T, sim orchestrator.SimConfig) *stack {
	t.Helper()
	_, dbus := memoryBus(t)
	_, rbus := memoryBus(t)
	orch, err := orchestrator.New(orchestrator.Config{Durable: dbus, Realtime: rbus, Sim: sim})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = orch.Shutdown(context.Background()) })
	d, err := dashboard.New(dashboard.Config{JobsAPI: orch.Handler()})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := d.Subscribe(context.Background(), rbus); err != nil {
		t.Fatal(err)
	}
	g := &wsGate{next: d.Handler()}
	srv := httptest.NewServer(g)
	t.Cleanup(func() { _ = d.Close(); srv.Close() })
	return &stack{orch: orch, dash: d, gate: g, srv: srv}
}

// waitJob waits until the orchestrator has finished job id.
func (s *stack) waitJob(ctx context.Context, t *testing.T, id string) orchestrator.JobView {
	t.Helper()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		v, err := s.orch.Get(id)
		if err == nil && v.Status.Terminal() {
			return v
		}
		select {
		case <-ctx.Done():
			t.Fatalf("job %s did not finish: %v", id, ctx.Err())
		case <-tick.C:
		}
	}
}

// recordStatuses installs a recorder of every status each row shows, in
// order (the page sets data-status on its rows).
const recordStatuses = `(() => {
  window.__history = {};
  new MutationObserver((muts) => {
    for (const m of muts) {
      const tr = m.target;
      if (!tr.dataset || !tr.dataset.job) continue;
      const h = (window.__history[tr.dataset.job] ||= []);
      if (h[h.length - 1] !== tr.dataset.status) h.push(tr.dataset.status);
    }
  }).observe(document.querySelector("#jobs tbody"), {subtree: true, attributes: true, attributeFilter: ["data-status"]});
  return true;
})()`

func rowStatus(id string) string {
	return fmt.Sprintf(`(document.querySelector('tr[data-job=%q]') || {dataset: {}}).dataset.status`, id)
}

// TestBrowserDashboard drives the page in headless Chromium: it submits a
// job through the form and watches its row go from submitted to completed,
// then cuts the WebSocket, holds the page disconnected while another job
// runs, and sees the page reconnect and re-sync; it writes a screenshot.
func TestBrowserDashboard(t *testing.T) {
	s := newStack(t, orchestrator.SimConfig{Seed: 3, FailureRatio: 0.2, Speed: 4, QueueDelay: 4 * time.Second, RunTime: 4 * time.Second})
	b := browsertest.Start(t, 1440, 900)
	ctx, cancel := context.WithTimeout(b, 60*time.Second)
	defer cancel()
	poll := func(what, expr string) {
		t.Helper()
		if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(deadline))); err != nil {
			t.Fatalf("waiting for %s (%s): %v", what, expr, err)
		}
	}

	if err := chromedp.Do(ctx, chromedp.Navigate(s.srv.URL+"/")); err != nil {
		t.Fatal(err)
	}
	poll("the page to connect", `document.body.dataset.conn === "connected"`)
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](recordStatuses)); err != nil {
		t.Fatal(err)
	}

	// Submit through the form.
	if err := chromedp.Do(ctx,
		chromedp.SetValue(`input[name="user_id"]`, "astro-ann"),
		chromedp.SetValue(`input[name="job_name"]`, "browser-submitted"),
		chromedp.Click(`#submit button[type="submit"]`),
	); err != nil {
		t.Fatal(err)
	}
	poll("the submission to be accepted", `document.querySelector("#submit-result").textContent.startsWith("Submitted ")`)
	result, err := chromedp.Run(ctx, chromedp.Text("#submit-result"))
	if err != nil {
		t.Fatal(err)
	}
	job := strings.TrimPrefix(result, "Submitted ")
	v, err := s.orch.Get(job)
	if err != nil || v.UserID != "astro-ann" || v.Spec.JobName != "browser-submitted" || v.Spec.Telescope != "vla" {
		t.Fatalf("the form submitted %+v (%v)", v, err)
	}
	poll(job+" completed", rowStatus(job)+` === "completed"`)
	var history []string
	raw, err := chromedp.Run(ctx, chromedp.Evaluate[json.RawMessage](fmt.Sprintf(`window.__history[%q]`, job)))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &history); err != nil {
		t.Fatal(err)
	}
	want := []string{"submitted", "queued", "running", "completed"}
	if !slices.Equal(history, want) {
		t.Errorf("%s went through %v, want %v", job, history, want)
	}
	cells, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](fmt.Sprintf(`[...document.querySelector('tr[data-job=%q]').cells].map(c => c.textContent)`, job)))
	if err != nil {
		t.Fatal(err)
	}
	if len(cells) != 9 || cells[1] != "astro-ann" || !strings.Contains(cells[4], "100%") || !strings.HasPrefix(cells[5], "hpc-node-") || !strings.HasSuffix(cells[7], "s") {
		t.Errorf("row cells %q: want user, 100 %%, node and a duration", cells)
	}

	// Kill the WebSocket and keep it down; a job runs meanwhile.
	s.gate.closed.Store(true)
	if n := s.dash.DropConnections(); n != 1 {
		t.Fatalf("DropConnections closed %d sockets, want 1", n)
	}
	poll("the page to show it is disconnected", `document.body.dataset.conn === "disconnected" && document.querySelector("#conn-text").textContent.startsWith("disconnected")`)
	missed, err := s.orch.Submit(ctx, "astro-bob", eventmodels.JobSpec{ProjectID: "deep-field", Telescope: "alma", Queue: "gpu", JobName: "while-offline",
		Resources: eventmodels.Resources{CPUCores: 2, GPUs: 1, MemoryMB: 2048, WalltimeSeconds: 600}})
	if err != nil {
		t.Fatal(err)
	}
	final := s.waitJob(ctx, t, missed.JobID)
	if st, _ := chromedp.Run(ctx, chromedp.Evaluate[string](rowStatus(missed.JobID))); st != "" {
		t.Fatalf("the disconnected page shows %s as %q", missed.JobID, st)
	}

	// Let it back in: it reconnects by itself and re-syncs.
	s.gate.closed.Store(false)
	poll("the page to reconnect", `document.body.dataset.conn === "connected" && document.body.dataset.reconnects === "1"`)
	poll(missed.JobID+" re-synced", rowStatus(missed.JobID)+fmt.Sprintf(` === %q`, final.Status))
	if st, _ := chromedp.Run(ctx, chromedp.Evaluate[string](rowStatus(job))); st != "completed" {
		t.Errorf("after the re-sync %s shows %q", job, st)
	}

	// A busier page for the screenshot: a few jobs in flight, one
	// cancelled, and a notification toast.
	for i := range 5 {
		if _, err := s.orch.Submit(ctx, fmt.Sprintf("astro-%c", 'c'+i), eventmodels.JobSpec{ProjectID: "survey", Telescope: "meerkat", Queue: "standard",
			JobName: fmt.Sprintf("mosaic-%d", i+1), Resources: eventmodels.Resources{CPUCores: 16, MemoryMB: 8192, WalltimeSeconds: 3600}}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.orch.Cancel("job-000007", "astro-ops", "superseded"); err != nil {
		t.Fatal(err)
	}
	n := eventmodels.NewNotification("astro-ann", "astro-ann", eventmodels.ChannelPush, eventmodels.SeverityInfo,
		"Job "+job+" completed", "Finished; results are ready.")
	n.JobID = job
	_ = s.dash.PushNotification(ctx, n)
	poll("the toast", `document.querySelectorAll("#toasts .toast").length === 1`)
	poll("7 rows, one cancelled, one running", `document.querySelectorAll("#jobs tbody tr").length === 7 && `+rowStatus("job-000007")+` === "cancelled" && !!document.querySelector('tr[data-status="running"]')`)

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatal(err)
	}
	path := os.Getenv(ScreenshotEnv)
	if path == "" {
		path = filepath.Join(t.TempDir(), "dashboard.png")
	}
	if err := os.WriteFile(path, shot, 0o644); err != nil {
		t.Fatal(err)
	}
	if len(shot) < 10_000 || string(shot[1:4]) != "PNG" {
		t.Errorf("screenshot is %d bytes, not a PNG of the page", len(shot))
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(shot))
}
