package main

import (
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// Request is one POST the Receiver got.
type Request struct {
	Time           time.Time       `json:"time"`
	Path           string          `json:"path"`
	IdempotencyKey string          `json:"idempotency_key,omitempty"`
	Body           json.RawMessage `json:"body,omitempty"`
	// Text is the body when it is not JSON.
	Text string `json:"text,omitempty"`
}

// Count is what GET /count answers.
type Count struct {
	// Received counts POSTs; Distinct counts distinct Idempotency-Keys
	// (a POST without one counts as distinct).
	Received int64 `json:"received"`
	Distinct int64 `json:"distinct"`
}

// Receiver is the webhook receiver's handler. It is safe for concurrent
// use.
type Receiver struct {
	keep    int
	maxBody int64
	log     *slog.Logger

	mu    sync.Mutex
	count Count
	keys  map[string]struct{}
	last  []Request // ring of the last keep, oldest first once full
	next  int
}

// NewReceiver returns a Receiver keeping the last keep requests and
// refusing bodies over maxBody bytes.
func NewReceiver(keep int, maxBody int64, log *slog.Logger) *Receiver {
	return &Receiver{keep: keep, maxBody: maxBody, log: log, keys: map[string]struct{}{}}
}

// ServeHTTP receives a POST on any path; GET /count and GET /received
// report.
func (rx *Receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.Method == http.MethodPost:
		rx.receive(w, r)
	case r.Method == http.MethodGet && r.URL.Path == "/count":
		rx.mu.Lock()
		c := rx.count
		rx.mu.Unlock()
		writeJSON(w, c)
	case r.Method == http.MethodGet && r.URL.Path == "/received":
		writeJSON(w, rx.Received())
	case r.Method == http.MethodGet:
		http.NotFound(w, r)
	default:
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (rx *Receiver) receive(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, rx.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		}
		http.Error(w, "reading the body: "+err.Error(), http.StatusBadRequest)
		return
	}
	req := Request{Time: time.Now().UTC(), Path: r.URL.Path, IdempotencyKey: r.Header.Get("Idempotency-Key")}
	if json.Valid(body) {
		req.Body = body
	} else {
		req.Text = string(body)
	}
	rx.mu.Lock()
	rx.count.Received++
	dup := false
	if req.IdempotencyKey != "" {
		_, dup = rx.keys[req.IdempotencyKey]
		rx.keys[req.IdempotencyKey] = struct{}{}
	}
	if !dup {
		rx.count.Distinct++
	}
	if rx.keep > 0 {
		if len(rx.last) < rx.keep {
			rx.last = append(rx.last, req)
		} else {
			rx.last[rx.next] = req
			rx.next = (rx.next + 1) % rx.keep
		}
	}
	c := rx.count
	rx.mu.Unlock()
	rx.log.Info("received", "path", req.Path, "idempotency_key", req.IdempotencyKey, "duplicate", dup,
		"bytes", len(body), "received", c.Received, "distinct", c.Distinct)
	w.WriteHeader(http.StatusNoContent)
}

// Received returns the kept requests, oldest first.
func (rx *Receiver) Received() []Request {
	rx.mu.Lock()
	defer rx.mu.Unlock()
	out := make([]Request, 0, len(rx.last))
	out = append(out, rx.last[rx.next:]...)
	return append(out, rx.last[:rx.next]...)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}
