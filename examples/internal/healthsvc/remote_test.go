package healthsvc_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
	"github.com/cosmic-horizons/events/testkit"
)

// record adds n attempts of service to rec, failed of them failing, each
// taking took.
func record(rec *healthsvc.Recorder, service string, n, failed int, took time.Duration) {
	for i := range n {
		var err error
		if i < failed {
			err = errors.New("handler failed")
		}
		rec.Record(service, took, err)
	}
}

// TestRemoteSignals: two processes' Recorders behind SignalsHandler, read
// by one Remote. The same service seen by both is merged (counts add up,
// the larger P99 wins) and the health service raises the error-rate alert
// that neither process alone would: 1 % + 4 % of 500 attempts each.
func TestRemoteSignals(t *testing.T) {
	a, b := healthsvc.NewRecorder(healthsvc.RecorderConfig{}), healthsvc.NewRecorder(healthsvc.RecorderConfig{})
	record(a, "billing", 500, 5, time.Millisecond)
	record(b, "billing", 500, 20, 700*time.Millisecond)
	record(b, "audit", 200, 0, time.Millisecond)
	sa := httptest.NewServer(healthsvc.SignalsHandler(a))
	t.Cleanup(sa.Close)
	sb := httptest.NewServer(healthsvc.SignalsHandler(b))
	t.Cleanup(sb.Close)

	r, err := healthsvc.NewRemote(healthsvc.RemoteConfig{URLs: []string{sa.URL + healthsvc.SignalsPath, sb.URL + healthsvc.SignalsPath}})
	if err != nil {
		t.Fatal(err)
	}
	if got := r.Signals(time.Minute); len(got) != 0 {
		t.Fatalf("signals before any fetch: %+v", got)
	}
	if err := r.Refresh(context.Background(), time.Minute); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	got := r.Signals(time.Minute)
	if len(got) != 2 || got[0].Service != "audit" || got[1].Service != "billing" {
		t.Fatalf("signals %+v, want audit and billing", got)
	}
	if bill := got[1]; bill.Handled != 975 || bill.Failed != 25 || bill.P99 < 600*time.Millisecond {
		t.Fatalf("billing merged to %+v, want 975 handled, 25 failed, P99 about 700ms", bill)
	}
	s, _ := newService(t, healthsvc.Config{Signals: r}, nil)
	rep := check(t, s)
	if rate := ofKind(rep.Raised, healthsvc.AlertErrorRate); len(rate) != 1 || rate[0].Subject != "billing" || rate[0].Value != 0.025 {
		t.Fatalf("raised %+v, want error_rate 0.025 for billing", rep.Raised)
	}
	if lat := ofKind(rep.Raised, healthsvc.AlertLatency); len(lat) != 1 || lat[0].Subject != "billing" {
		t.Fatalf("raised %+v, want p99_latency for billing", rep.Raised)
	}

	// b stops answering: one failed fetch keeps its last signals (a slow
	// answer is no outage); the second (DownAfter) drops them, and the
	// error names b.
	sb.Close()
	err = r.Refresh(context.Background(), time.Minute)
	if err == nil || !strings.Contains(err.Error(), sb.URL) {
		t.Fatalf("Refresh with one endpoint down: %v, want an error naming %s", err, sb.URL)
	}
	if got := r.Signals(time.Minute); len(got) != 2 {
		t.Fatalf("signals after one failed fetch: %+v, want both kept", got)
	}
	_ = r.Refresh(context.Background(), time.Minute)
	if got := r.Signals(time.Minute); len(got) != 1 || got[0].Service != "billing" || got[0].Attempts() != 500 {
		t.Fatalf("signals after b went down: %+v, want a's billing alone", got)
	}
	src := r.Sources()
	if len(src) == 2 && src[0].URL == sb.URL+healthsvc.SignalsPath {
		src[0], src[1] = src[1], src[0] // sorted by URL; the ports decide
	}
	if len(src) != 2 || !src[0].Up || src[1].Up || src[1].URL != sb.URL+healthsvc.SignalsPath ||
		!slices.Equal(src[1].Services, []string{"audit", "billing"}) {
		t.Fatalf("sources %+v, want a up and b down with its last services", src)
	}

	// The health service raises source_unreachable for b, and billing's
	// alerts stay open: a's share alone (1 %) says nothing of b's.
	rep = check(t, s)
	if un := ofKind(rep.Raised, healthsvc.AlertSourceUnreachable); len(un) != 1 || un[0].Subject != sb.URL+healthsvc.SignalsPath {
		t.Fatalf("raised %+v, want source_unreachable for b", rep.Raised)
	}
	for range 3 {
		rep = check(t, s)
		if len(rep.Cleared) != 0 {
			t.Fatalf("cleared %+v while b does not answer, want nothing cleared", rep.Cleared)
		}
	}
	if len(ofKind(rep.Active, healthsvc.AlertErrorRate)) != 1 || len(ofKind(rep.Active, healthsvc.AlertLatency)) != 1 {
		t.Fatalf("active %+v, want billing's error_rate and p99_latency still open", rep.Active)
	}
}

// TestRemoteBadEndpoints: an error status, malformed JSON and an oversized
// body are errors that name the endpoint, never a panic or a partial read.
func TestRemoteBadEndpoints(t *testing.T) {
	cases := map[string]http.HandlerFunc{
		"status":    func(w http.ResponseWriter, _ *http.Request) { http.Error(w, "boom", http.StatusInternalServerError) },
		"malformed": func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`[{"service": 7`)) },
		"oversized": func(w http.ResponseWriter, _ *http.Request) {
			_, _ = w.Write([]byte(`[{"service":"` + strings.Repeat("x", 2<<20) + `"}]`))
		},
	}
	for name, h := range cases {
		t.Run(name, func(t *testing.T) {
			srv := httptest.NewServer(h)
			t.Cleanup(srv.Close)
			r, err := healthsvc.NewRemote(healthsvc.RemoteConfig{URLs: []string{srv.URL}})
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Refresh(context.Background(), time.Minute); err == nil || !strings.Contains(err.Error(), srv.URL) {
				t.Fatalf("Refresh: %v, want an error naming %s", err, srv.URL)
			}
			if got := r.Signals(time.Minute); len(got) != 0 {
				t.Fatalf("signals %+v from a bad endpoint", got)
			}
		})
	}
}

// TestSignalsHandlerRequests: the window parameter reaches the source;
// a bad window is a 400 and other methods a 405.
func TestSignalsHandlerRequests(t *testing.T) {
	rec := healthsvc.NewRecorder(healthsvc.RecorderConfig{})
	record(rec, "svc", 10, 1, time.Millisecond)
	h := healthsvc.SignalsHandler(rec)
	for _, tc := range []struct {
		method, target string
		code           int
		body           string
	}{
		{http.MethodGet, "/signals", http.StatusOK, `"service":"svc"`},
		{http.MethodGet, "/signals?window=30s", http.StatusOK, `"failed":1`},
		{http.MethodGet, "/signals?window=soon", http.StatusBadRequest, "window"},
		{http.MethodGet, "/signals?window=-1s", http.StatusBadRequest, "window"},
		{http.MethodPost, "/signals", http.StatusMethodNotAllowed, ""},
	} {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(tc.method, tc.target, nil))
		if w.Code != tc.code || !strings.Contains(w.Body.String(), tc.body) {
			t.Errorf("%s %s: %d %q, want %d containing %q", tc.method, tc.target, w.Code, w.Body.String(), tc.code, tc.body)
		}
	}
	empty := httptest.NewRecorder()
	healthsvc.SignalsHandler(healthsvc.NewRecorder(healthsvc.RecorderConfig{})).ServeHTTP(empty, httptest.NewRequest(http.MethodGet, "/signals", nil))
	if strings.TrimSpace(empty.Body.String()) != "[]" {
		t.Errorf("no services: body %q, want []", empty.Body.String())
	}
}

// TestRemoteConfigAndRun: every configuration problem is reported at once;
// Run refreshes at once and stops with its context.
func TestRemoteConfigAndRun(t *testing.T) {
	_, err := healthsvc.NewRemote(healthsvc.RemoteConfig{Timeout: -time.Second})
	if err == nil || !strings.Contains(err.Error(), "URLs") || !strings.Contains(err.Error(), "Timeout") {
		t.Fatalf("NewRemote(empty, negative timeout) = %v, want both problems", err)
	}
	_, err = healthsvc.NewRemote(healthsvc.RemoteConfig{URLs: []string{"localhost:8080/signals", "ftp://h/signals"}})
	if err == nil || !strings.Contains(err.Error(), "URLs[0]") || !strings.Contains(err.Error(), "URLs[1]") {
		t.Fatalf("NewRemote(bad URLs) = %v, want both named", err)
	}

	rec := healthsvc.NewRecorder(healthsvc.RecorderConfig{})
	record(rec, "svc", 3, 0, time.Millisecond)
	srv := httptest.NewServer(healthsvc.SignalsHandler(rec))
	t.Cleanup(srv.Close)
	r, err := healthsvc.NewRemote(healthsvc.RemoteConfig{URLs: []string{srv.URL}})
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Run(context.Background(), 0, time.Minute); err == nil {
		t.Fatal("Run with a zero interval returned nil")
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, time.Hour, time.Minute) }()
	// The interval is an hour: only the fetch at start can fill it.
	wctx, wcancel := context.WithTimeout(ctx, waitTimeout)
	defer wcancel()
	testkit.Eventually(wctx, t, "Run's first fetch", func() bool { return len(r.Signals(time.Minute)) == 1 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Run returned %v, want context.Canceled", err)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Run did not stop with its context")
	}
	if got := r.Signals(time.Minute); len(got) != 1 || got[0].Handled != 3 {
		t.Fatalf("signals after Run: %+v", got)
	}
}
