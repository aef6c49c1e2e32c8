package healthsvc

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"
)

// Readiness is the body of GET /readyz.
type Readiness struct {
	Ready bool `json:"ready"`
	// Reasons say why the service is not ready: a backend unreachable, no
	// round yet, or the last round too old.
	Reasons []string `json:"reasons,omitempty"`
	// Degraded lists backend problems that do not make it unready (a Kafka
	// cluster answering with a broker missing).
	Degraded []string `json:"degraded,omitempty"`
	// CheckedAt is when the last round started.
	CheckedAt time.Time `json:"checked_at,omitzero"`
	// Active counts the active alerts.
	Active int `json:"active_alerts"`
}

// Readiness judges readiness from the last round: not ready before the
// first round, when the last round is older than StaleAfter, or when a
// backend was unreachable in it.
func (s *Service) Readiness() Readiness {
	s.mu.Lock()
	last, lastAt := s.last, s.lastAt
	s.mu.Unlock()
	if last == nil {
		return Readiness{Reasons: []string{"no health check has completed yet"}}
	}
	r := Readiness{Ready: last.Ready, Reasons: slices.Clone(last.NotReady), CheckedAt: last.Time, Active: len(last.Active)}
	if age := s.cfg.Clock().Sub(lastAt); age > s.cfg.StaleAfter {
		r.Ready = false
		r.Reasons = append(r.Reasons, fmt.Sprintf("last health check judged %v ago (stale after %v)", age.Round(time.Millisecond), s.cfg.StaleAfter))
	}
	for _, b := range last.Backends {
		if b.Degraded && !b.Down {
			for _, p := range b.Problems {
				r.Degraded = append(r.Degraded, b.Name+": "+p)
			}
		}
	}
	return r
}

// HTTPHandler serves:
//
//	GET /healthz  liveness: 200 "ok" while the process serves HTTP
//	GET /readyz   readiness: 200 when every backend answered in the last
//	              round, else 503; the JSON body (Readiness) says why
//	GET /report   the last round's Report and the Stats, as JSON
//	GET /history  the latest alert transitions (History), as JSON
func (s *Service) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		r := s.Readiness()
		code := http.StatusOK
		if !r.Ready {
			code = http.StatusServiceUnavailable
		}
		writeJSON(w, code, r)
	})
	mux.HandleFunc("GET /report", func(w http.ResponseWriter, _ *http.Request) {
		last, ok := s.Last()
		body := struct {
			Report *Report `json:"report"`
			Stats  Stats   `json:"stats"`
		}{Stats: s.Stats()}
		if ok {
			body.Report = &last
		}
		writeJSON(w, http.StatusOK, body)
	})
	mux.HandleFunc("GET /history", func(w http.ResponseWriter, _ *http.Request) {
		h := s.History()
		if h == nil {
			h = []Transition{}
		}
		writeJSON(w, http.StatusOK, h)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
