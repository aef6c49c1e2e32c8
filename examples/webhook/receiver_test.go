package main

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func post(t *testing.T, h http.Handler, key, body string) int {
	t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/hook", strings.NewReader(body))
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code
}

func get(t *testing.T, h http.Handler, path string, v any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET %s = %d", path, rec.Code)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
}

// TestReceiverCountsAndKeeps: every POST is counted, a repeated
// Idempotency-Key once as distinct, the last keep requests are served
// oldest first, a body over the limit is refused.
func TestReceiverCountsAndKeeps(t *testing.T) {
	rx := NewReceiver(2, 64, slog.New(slog.DiscardHandler))
	for _, p := range []struct{ key, body string }{{"a", `{"n":1}`}, {"b", `{"n":2}`}, {"a", `{"n":1}`}, {"", "plain"}} {
		if code := post(t, rx, p.key, p.body); code != http.StatusNoContent {
			t.Fatalf("POST = %d, want 204", code)
		}
	}
	var c Count
	get(t, rx, "/count", &c)
	if c != (Count{Received: 4, Distinct: 3}) {
		t.Errorf("count = %+v, want 4 received, 3 distinct", c)
	}
	var last []Request
	get(t, rx, "/received", &last)
	if len(last) != 2 || last[0].IdempotencyKey != "a" || string(last[0].Body) != `{"n":1}` || last[1].Text != "plain" {
		t.Errorf("received = %+v, want the last two, oldest first", last)
	}
	if code := post(t, rx, "c", strings.Repeat("x", 65)); code != http.StatusRequestEntityTooLarge {
		t.Errorf("POST of 65 bytes = %d, want 413", code)
	}
	rec := httptest.NewRecorder()
	rx.ServeHTTP(rec, httptest.NewRequest(http.MethodDelete, "/count", nil))
	if rec.Code != http.StatusMethodNotAllowed {
		t.Errorf("DELETE = %d, want 405", rec.Code)
	}
}
