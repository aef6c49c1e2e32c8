package opsview_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/browsertest"
	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
	"github.com/cosmic-horizons/events/examples/internal/opsview"
)

// ScreenshotURLEnv, if set, makes TestScreenshot load the operator view at
// that URL (e.g. a demo run with --serve: http://127.0.0.1:8080/ops) and
// write a screenshot to the file ScreenshotEnv names; the README's
// docs/img/operator-view.png is made so.
const (
	ScreenshotURLEnv = "OPS_SCREENSHOT_URL"
	ScreenshotEnv    = "OPS_SCREENSHOT"
)

func poll(ctx context.Context, t *testing.T, what, expr string) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Poll[bool](expr, chromedp.WithPollingInterval(20*time.Millisecond), chromedp.WithPollingTimeout(30*time.Second))); err != nil {
		t.Fatalf("waiting for %s (%s): %v", what, expr, err)
	}
}

// TestBrowserOperatorView loads the page in headless Chromium over a View
// fed known figures, and waits until every chart has drawn them: a canvas
// per chart, the samples and series counts the page exposes, the brokers'
// state, the alert log, and a value read back from a chart's data.
func TestBrowserOperatorView(t *testing.T) {
	ctx := context.Background()
	clk := &clock{t: time.Now().Add(-10 * time.Second)}
	col := opsview.NewCollector()
	h := &fakeHealth{}
	v, err := opsview.New(opsview.Config{Collector: col, Health: h, Clock: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		msgs := []*broker.Message{msg("job-lifecycle", ""), msg("job-lifecycle", ""), msg("job-metrics", "")}
		col.OnPublished(ctx, msgs, 0, nil)
		for _, m := range msgs {
			col.OnHandled(ctx, msg(m.Topic, "metrics-service"), time.Duration(1+i)*time.Millisecond, nil)
		}
		if i == 4 {
			col.OnRetry(ctx, msgs[0], 1, errors.New("boom"))
			col.OnDeadLetter(ctx, msgs[0], errors.New("boom"))
		}
		h.rep = healthsvc.Report{Time: clk.t, Backends: []healthsvc.BackendReport{
			{Name: "kafka", Lag: []healthsvc.LagSummary{{Group: "metrics-service", Total: int64(10 - i)}}},
			{Name: "rabbitmq", Down: i >= 7},
		}}
		if i == 7 {
			h.rep.Raised = []healthsvc.Alert{{Kind: healthsvc.AlertBrokerDown, Subject: "rabbitmq", Severity: eventmodels.SeverityCritical, Message: "RabbitMQ unreachable"}}
			h.stats.AlertsRaised++
		}
		clk.t = clk.t.Add(time.Second)
		v.Sample(ctx)
	}
	srv := httptest.NewServer(v.Handler())
	t.Cleanup(srv.Close)

	b := browsertest.Start(t, 1440, 1300)
	bctx, cancel := context.WithTimeout(b, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(bctx, chromedp.Navigate(srv.URL+"/ops")); err != nil {
		t.Fatal(err)
	}
	charts := []string{"publish", "consume", "lag", "latency", "failures", "reach", "alerts"}
	for _, id := range charts {
		poll(bctx, t, id+" drawn", `(() => { const e = document.getElementById("`+id+`"); return !!e.querySelector("canvas") && Number(e.dataset.points) === 10 && Number(e.dataset.series) > 0; })()`)
	}
	poll(bctx, t, "the page's sample count", `document.body.dataset.points === "10"`)
	series, err := chromedp.Run(bctx, chromedp.Evaluate[[]int](`["publish","consume","lag","latency","failures","reach","alerts"].map(id => Number(document.getElementById(id).dataset.series))`))
	if err != nil {
		t.Fatal(err)
	}
	// 2 topics, 2 topics, 1 group, P50+P99 of 1 group, retries+dead letters, 2 brokers, 3 alert lines
	if want := []int{2, 2, 1, 2, 2, 2, 3}; !equal(series, want) {
		t.Errorf("series per chart %v, want %v", series, want)
	}
	brokers, err := chromedp.Run(bctx, chromedp.Text("#brokers"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(brokers, "kafka: reachable") || !strings.Contains(brokers, "rabbitmq: DOWN") {
		t.Errorf("brokers show %q", brokers)
	}
	log, err := chromedp.Run(bctx, chromedp.Text("#alertlog"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(log, "raised") || !strings.Contains(log, "RabbitMQ unreachable") {
		t.Errorf("alert log shows %q", log)
	}
	// uPlot holds what it drew: the publish rate of job-lifecycle is 2/s.
	last, err := chromedp.Run(bctx, chromedp.Evaluate[float64](`(() => { const p = window.__opsCharts.publish.plot; const i = p.series.findIndex(s => s.label === "job-lifecycle"); return i > 0 ? p.data[i].at(-1) : -1; })()`))
	if err != nil {
		t.Fatal(err)
	}
	if last != 2 {
		t.Errorf("the publish chart's last job-lifecycle value is %v, want 2 (events/s)", last)
	}
	src, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](`[...document.scripts].map(s => s.src).concat([...document.querySelectorAll("link")].map(l => l.href))`))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range src {
		if !strings.HasPrefix(s, srv.URL+"/ops/static/") {
			t.Errorf("the page loads %s, not from its own server", s)
		}
	}
}

func equal(a, b []int) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestScreenshot writes a screenshot of the operator view at
// $OPS_SCREENSHOT_URL to $OPS_SCREENSHOT; skipped unless both are set.
func TestScreenshot(t *testing.T) {
	url, path := os.Getenv(ScreenshotURLEnv), os.Getenv(ScreenshotEnv)
	if url == "" || path == "" {
		t.Skip("set " + ScreenshotURLEnv + " and " + ScreenshotEnv)
	}
	b := browsertest.Start(t, 1440, 1300)
	ctx, cancel := context.WithTimeout(b, 60*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Navigate(url)); err != nil {
		t.Fatal(err)
	}
	poll(ctx, t, "a minute of samples drawn", `Number(document.body.dataset.points) >= 30 && !!document.querySelector("#latency canvas")`)
	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // quality 100: PNG
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Clean(path), shot, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot: %s (%d bytes)", path, len(shot))
}
