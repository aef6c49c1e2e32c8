package auditsvc

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"

	"github.com/cosmic-horizons/events/examples/internal/audittrail"
)

// apiError is the body of every error response.
type apiError struct {
	Error string `json:"error"`
}

// HTTPHandler serves:
//
//	GET /audit?job_id=…  the job's records in trail order, a JSON array of
//	                     audittrail.Record ([] for a job without records);
//	                     400 without job_id
//	GET /audit/verify    the whole chain verified, a VerifyResult; 200 with
//	                     "ok": false and "broken" naming the first broken
//	                     record when the chain is broken
//	GET /audit/stats     Stats
//
// Errors are JSON objects {"error": "…"}: 503 while the trail is
// unavailable or the service closed, 500 for a record that fails its own
// hash or a read error.
func (s *Service) HTTPHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /audit", func(w http.ResponseWriter, r *http.Request) {
		jobID := r.URL.Query().Get("job_id")
		if strings.TrimSpace(jobID) == "" {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "query parameter job_id is required"})
			return
		}
		recs, err := s.ByJob(r.Context(), jobID)
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, recs)
	})
	mux.HandleFunc("GET /audit/verify", func(w http.ResponseWriter, r *http.Request) {
		rep, err := s.Verify(r.Context())
		if err != nil {
			writeError(w, err)
			return
		}
		writeJSON(w, http.StatusOK, NewVerifyResult(s.cfg.Dir, rep))
	})
	mux.HandleFunc("GET /audit/stats", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.Stats())
	})
	return mux
}

// writeError maps an error of the service to a status.
func writeError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrClosed), errors.Is(err, ErrUnavailable), errors.Is(err, audittrail.ErrClosed):
		status = http.StatusServiceUnavailable
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, apiError{Error: err.Error()})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}
