package orchestrator

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"

	"github.com/cosmic-horizons/events/eventmodels"
)

// MaxRequestBytes bounds a submission body.
const MaxRequestBytes = 64 << 10

// SubmitRequest is the body of POST /jobs: the user and the job spec, side by
// side.
type SubmitRequest struct {
	UserID string `json:"user_id"`
	eventmodels.JobSpec
}

// apiError is every error body of the API.
type apiError struct {
	Error  string                   `json:"error"`
	Fields []eventmodels.FieldError `json:"fields,omitempty"`
}

// Handler serves the API:
//
//	POST   /jobs       submit (201 with the job; 400 with field errors; 413; 415; 503 when the bus refuses)
//	GET    /jobs       list
//	GET    /jobs/{id}  one job (404)
//	DELETE /jobs/{id}  cancel (202; 400 with field errors; 404; 409 when already finished)
//
// The resources of a submission must lie within these bounds, else the
// answer is 400 with one field error per resource outside them, e.g.
// {"field": "resources.cpu_cores", "problem": "must be between 1 and 4096"}:
//
//	resources.cpu_cores         1 to MaxCPUCores (4096)
//	resources.gpus              0 to MaxGPUs (64)
//	resources.memory_mb         1 to MaxMemoryMB (16,777,216: 16 TiB)
//	resources.walltime_seconds  1 to MaxWalltimeSeconds (2,592,000: 30 days)
//
// A job whose next event cannot be published — the bus rejects it as
// invalid, or still fails after Config.PublishAttempts tries — ends with
// status "failed" and the cause in "reason" (see Service.Submit); it never
// stays running.
//
// DELETE takes the canceller from the X-User-ID header (default "api") and
// the reason from the query parameter "reason". Every error body is JSON:
// {"error": "...", "fields": [{"field": "...", "problem": "..."}]}.
func (s *Service) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /jobs", s.handleSubmit)
	mux.HandleFunc("GET /jobs", func(w http.ResponseWriter, r *http.Request) { writeJSON(w, http.StatusOK, s.List()) })
	mux.HandleFunc("GET /jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		v, err := s.Get(r.PathValue("id"))
		if err != nil {
			writeJSON(w, http.StatusNotFound, apiError{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, v)
	})
	mux.HandleFunc("DELETE /jobs/{id}", func(w http.ResponseWriter, r *http.Request) {
		by := r.Header.Get("X-User-ID")
		if by == "" {
			by = "api"
		}
		v, err := s.Cancel(r.PathValue("id"), by, r.URL.Query().Get("reason"))
		var ve *eventmodels.ValidationError
		switch {
		case errors.Is(err, ErrNotFound):
			writeJSON(w, http.StatusNotFound, apiError{Error: err.Error()})
		case errors.Is(err, ErrFinished):
			writeJSON(w, http.StatusConflict, apiError{Error: err.Error()})
		case errors.As(err, &ve):
			writeJSON(w, http.StatusBadRequest, apiError{Error: "invalid cancellation", Fields: ve.Fields})
		case err != nil:
			writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
		default:
			writeJSON(w, http.StatusAccepted, v)
		}
	})
	return mux
}

func (s *Service) handleSubmit(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, err := mime.ParseMediaType(ct); err != nil || mt != "application/json" {
			writeJSON(w, http.StatusUnsupportedMediaType, apiError{Error: fmt.Sprintf("Content-Type must be application/json, got %q", ct)})
			return
		}
	}
	r.Body = http.MaxBytesReader(w, r.Body, MaxRequestBytes)
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	var req SubmitRequest
	if err := dec.Decode(&req); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeJSON(w, http.StatusRequestEntityTooLarge, apiError{Error: fmt.Sprintf("request body over %d bytes", MaxRequestBytes)})
			return
		}
		if errors.Is(err, io.EOF) {
			writeJSON(w, http.StatusBadRequest, apiError{Error: "malformed request: empty body, expected a JSON object"})
			return
		}
		writeJSON(w, http.StatusBadRequest, apiError{Error: "malformed request: " + err.Error()})
		return
	}
	if dec.More() {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "malformed request: trailing data after the JSON object"})
		return
	}
	// The envelope rules on user_id (not empty, bounded, no control
	// characters), reported with the spec's problems in one answer.
	probe := eventmodels.NewBase(eventmodels.TypeJobSubmitted, eventmodels.JobLifecycleSchemaVersion, req.UserID)
	fields := eventmodels.ValidateBase(&probe).Fields
	ve := &eventmodels.ValidationError{}
	if err := req.JobSpec.Validate(); err != nil && !errors.As(err, &ve) {
		writeJSON(w, http.StatusInternalServerError, apiError{Error: err.Error()})
		return
	}
	checkResources(ve, "resources.", req.Resources)
	fields = append(fields, ve.Fields...)
	if len(fields) > 0 {
		writeJSON(w, http.StatusBadRequest, apiError{Error: "invalid job", Fields: fields})
		return
	}
	v, err := s.Submit(r.Context(), req.UserID, req.JobSpec)
	switch {
	case errors.As(err, &ve):
		writeJSON(w, http.StatusBadRequest, apiError{Error: "invalid job", Fields: ve.Fields})
	case errors.Is(err, ErrStopped):
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: err.Error()})
	case err != nil:
		writeJSON(w, http.StatusServiceUnavailable, apiError{Error: err.Error()})
	default:
		w.Header().Set("Location", "/jobs/"+v.JobID)
		writeJSON(w, http.StatusCreated, v)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
