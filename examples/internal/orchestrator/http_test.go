package orchestrator_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/orchestrator"
	"github.com/cosmic-horizons/events/testkit"
)

// apiError is the error body of the API.
type apiError struct {
	Error  string                   `json:"error"`
	Fields []eventmodels.FieldError `json:"fields"`
}

func (e apiError) fieldNames() []string {
	out := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		out[i] = f.Field
	}
	return out
}

// do sends a request and decodes the JSON answer into out (if not nil).
func do(t *testing.T, method, u, contentType, body string, header http.Header, out any) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q, body %s", method, u, ct, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: answer %s: %v", method, u, raw, err)
		}
	}
	return resp
}

const validBody = `{"user_id":"alice","project_id":"proj-1","telescope":"ALMA","instrument":"band-6","job_name":"img",
"queue":"batch","priority":3,"resources":{"cpu_cores":4,"gpus":1,"memory_mb":8192,"walltime_seconds":3600},"parameters":{"field":"m87"}}`

func TestHTTPBadInput(t *testing.T) {
	r := newRig(t, orchestrator.SimConfig{Speed: 0})
	srv := httptest.NewServer(r.svc.Handler())
	t.Cleanup(srv.Close)

	huge := `{"user_id":"` + strings.Repeat("a", orchestrator.MaxRequestBytes) + `"}`
	longUser := strings.Replace(validBody, `"alice"`, `"`+strings.Repeat("u", eventmodels.MaxIDLength+1)+`"`, 1)
	cases := []struct {
		name, contentType, body string
		status                  int
		errHas                  string
		fields                  []string // every one must be reported
	}{
		{name: "malformed", contentType: "application/json", body: `{"user_id":`, status: 400, errHas: "malformed"},
		{name: "not an object", contentType: "application/json", body: `[1,2]`, status: 400, errHas: "malformed"},
		{name: "empty body", contentType: "application/json", body: ``, status: 400, errHas: "empty body"},
		{name: "trailing data", contentType: "application/json", body: validBody + `{}`, status: 400, errHas: "trailing"},
		{name: "unknown field", contentType: "application/json", body: strings.Replace(validBody, `"queue"`, `"colour":"red","queue"`, 1), status: 400, errHas: `unknown field "colour"`},
		{name: "wrong type", contentType: "application/json", body: strings.Replace(validBody, `"priority":3`, `"priority":"high"`, 1), status: 400, errHas: "priority"},
		{name: "missing fields", contentType: "application/json", body: `{}`, status: 400, errHas: "invalid job",
			fields: []string{"user_id", "project_id", "telescope", "queue", "resources.cpu_cores", "resources.memory_mb", "resources.walltime_seconds"}},
		{name: "out of range", contentType: "application/json", body: strings.Replace(validBody, `"priority":3`, `"priority":11`, 1), status: 400, fields: []string{"priority"}},
		{name: "user too long", contentType: "application/json", body: longUser, status: 400, fields: []string{"user_id"}},
		{name: "huge body", contentType: "application/json", body: huge, status: 413, errHas: fmt.Sprint(orchestrator.MaxRequestBytes)},
		{name: "text/plain", contentType: "text/plain", body: validBody, status: 415, errHas: "application/json"},
		{name: "json prefix", contentType: "application/jsonx", body: validBody, status: 415, errHas: "application/json"},
		{name: "bad media type", contentType: ";;", body: validBody, status: 415, errHas: "application/json"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e apiError
			resp := do(t, http.MethodPost, srv.URL+"/jobs", c.contentType, c.body, nil, &e)
			if resp.StatusCode != c.status {
				t.Errorf("status %d, want %d (%+v)", resp.StatusCode, c.status, e)
			}
			if !strings.Contains(e.Error, c.errHas) {
				t.Errorf("error %q does not say %q", e.Error, c.errHas)
			}
			for _, f := range c.fields {
				if !slices.Contains(e.fieldNames(), f) {
					t.Errorf("fields %v lack %q", e.fieldNames(), f)
				}
			}
		})
	}
	// Nothing was accepted, so nothing was published on either bus.
	if msgs := r.durable.messages(""); len(msgs) != 0 {
		t.Errorf("%d messages published after bad requests, first %s", len(msgs), msgs[0].Header(broker.HeaderType))
	}
	if n := r.realtime.Count(); n != 0 {
		t.Errorf("%d real-time messages after bad requests", n)
	}
	if n := r.svc.Stats().Published.Load(); n != 0 {
		t.Errorf("Stats.Published %d after bad requests", n)
	}
	if jobs := r.svc.List(); len(jobs) != 0 {
		t.Errorf("jobs %v after bad requests", jobs)
	}

	// The bus refusing job.submitted is a 503, and nothing is accepted.
	r.durable.setHook(func(_ context.Context, _ *broker.Message) error { return errBusDown })
	var e apiError
	if resp := do(t, http.MethodPost, srv.URL+"/jobs", "application/json", validBody, nil, &e); resp.StatusCode != http.StatusServiceUnavailable || !strings.Contains(e.Error, "bus down") {
		t.Errorf("submit with the bus down: %d %+v, want 503 naming the cause", resp.StatusCode, e)
	}
	if jobs := r.svc.List(); len(jobs) != 0 {
		t.Errorf("jobs %v after a refused submission", jobs)
	}
}

func TestHTTPSubmitGetList(t *testing.T) {
	r := newRig(t, orchestrator.SimConfig{Speed: 0})
	srv := httptest.NewServer(r.svc.Handler())
	t.Cleanup(srv.Close)

	var v orchestrator.JobView
	resp := do(t, http.MethodPost, srv.URL+"/jobs", "application/json; charset=utf-8", validBody, nil, &v)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d, want 201", resp.StatusCode)
	}
	if v.JobID != "job-000001" || v.UserID != "alice" || v.Spec.Resources.GPUs != 1 || v.Spec.Parameters.Map()["field"] != "m87" {
		t.Errorf("created %+v", v)
	}
	if loc := resp.Header.Get("Location"); loc != "/jobs/"+v.JobID {
		t.Errorf("Location %q", loc)
	}
	if err := r.svc.Wait(testkit.TimeoutContext(t, deadline)); err != nil {
		t.Fatal(err)
	}

	var got orchestrator.JobView
	if resp := do(t, http.MethodGet, srv.URL+"/jobs/"+v.JobID, "", "", nil, &got); resp.StatusCode != http.StatusOK {
		t.Fatalf("GET status %d", resp.StatusCode)
	}
	if !got.Status.Terminal() || got.CorrelationID != v.CorrelationID || got.Events < 4 {
		t.Errorf("GET %+v", got)
	}
	var list []orchestrator.JobView
	if resp := do(t, http.MethodGet, srv.URL+"/jobs", "", "", nil, &list); resp.StatusCode != http.StatusOK || len(list) != 1 || list[0].JobID != v.JobID {
		t.Errorf("GET /jobs: %d %+v", resp.StatusCode, list)
	}
	var e apiError
	if resp := do(t, http.MethodGet, srv.URL+"/jobs/job-999999", "", "", nil, &e); resp.StatusCode != http.StatusNotFound || e.Error == "" {
		t.Errorf("GET unknown: %d %+v", resp.StatusCode, e)
	}
	// Submitted through HTTP, published like any other job.
	evs := r.lifecycle(t)[v.JobID]
	checkLifecycle(t, v.JobID, evs)
	if sub := evs[0].(*eventmodels.JobSubmitted); sub.UserID != "alice" || sub.Spec.ProjectID != "proj-1" {
		t.Errorf("job.submitted %+v", sub)
	}
}

func TestCancel(t *testing.T) {
	t.Run("submitted, by Cancel", func(t *testing.T) {
		// A queue delay of hours keeps the job waiting to be queued.
		r := newRig(t, orchestrator.SimConfig{Seed: 3, Speed: 1, QueueDelay: 10 * time.Hour})
		id := submitN(t, r.svc, 1)[0]
		v, err := r.svc.Cancel(id, "bob", "wrong target")
		if err != nil || !v.CancelRequested {
			t.Fatalf("Cancel: %+v %v", v, err)
		}
		if err := r.svc.Wait(testkit.TimeoutContext(t, deadline)); err != nil {
			t.Fatal(err)
		}
		evs := r.lifecycle(t)[id]
		if checkLifecycle(t, id, evs) != eventmodels.StatusCancelled {
			t.Fatalf("%s not cancelled", id)
		}
		c := evs[len(evs)-1].(*eventmodels.JobCancelled)
		if c.FromStatus != eventmodels.StatusSubmitted || c.CancelledBy != "bob" || c.Reason != "wrong target" || len(evs) != 2 {
			t.Errorf("cancelled %+v after %d events", c, len(evs))
		}
		if _, err := r.svc.Cancel(id, "bob", ""); !errors.Is(err, orchestrator.ErrFinished) {
			t.Errorf("second Cancel: %v, want ErrFinished", err)
		}
		if _, err := r.svc.Cancel("job-424242", "bob", ""); !errors.Is(err, orchestrator.ErrNotFound) {
			t.Errorf("Cancel of an unknown job: %v, want ErrNotFound", err)
		}
	})

	t.Run("running, by DELETE", func(t *testing.T) {
		// Queued for a millisecond, then a step of hours: the job sits
		// running.
		r := newRig(t, orchestrator.SimConfig{Seed: 3, Speed: 1, QueueDelay: time.Millisecond, RunTime: 100 * time.Hour})
		srv := httptest.NewServer(r.svc.Handler())
		t.Cleanup(srv.Close)
		id := submitN(t, r.svc, 1)[0]
		ctx := testkit.TimeoutContext(t, deadline)
		err := r.realtime.WaitUntil(ctx, "job running", func(ms []*broker.Message) bool {
			return slices.ContainsFunc(ms, func(m *broker.Message) bool { return m.Header(broker.HeaderType) == eventmodels.TypeJobStatusChanged })
		})
		if err != nil {
			t.Fatal(err)
		}

		// Values that cannot go into job.cancelled are refused up front,
		// and the job carries on.
		var e apiError
		long := http.Header{"X-User-Id": {strings.Repeat("x", eventmodels.MaxIDLength+1)}}
		if resp := do(t, http.MethodDelete, srv.URL+"/jobs/"+id, "", "", long, &e); resp.StatusCode != http.StatusBadRequest || !slices.Contains(e.fieldNames(), "cancelled_by") {
			t.Errorf("DELETE with a long X-User-ID: %d %+v, want 400 on cancelled_by", resp.StatusCode, e)
		}
		reason := url.Values{"reason": {strings.Repeat("r", eventmodels.MaxTextLength+1)}}.Encode()
		if resp := do(t, http.MethodDelete, srv.URL+"/jobs/"+id+"?"+reason, "", "", nil, &e); resp.StatusCode != http.StatusBadRequest || !slices.Contains(e.fieldNames(), "reason") {
			t.Errorf("DELETE with a long reason: %d %+v, want 400 on reason", resp.StatusCode, e)
		}
		if v, _ := r.svc.Get(id); v.CancelRequested || v.Status.Terminal() {
			t.Fatalf("job after refused cancellations: %+v", v)
		}

		var v orchestrator.JobView
		hdr := http.Header{"X-User-Id": {"ops"}}
		if resp := do(t, http.MethodDelete, srv.URL+"/jobs/"+id+"?reason=maintenance", "", "", hdr, &v); resp.StatusCode != http.StatusAccepted || !v.CancelRequested {
			t.Fatalf("DELETE: %d %+v", resp.StatusCode, v)
		}
		if err := r.svc.Wait(ctx); err != nil {
			t.Fatal(err)
		}
		evs := r.lifecycle(t)[id]
		if checkLifecycle(t, id, evs) != eventmodels.StatusCancelled {
			t.Fatalf("%s not cancelled", id)
		}
		c := evs[len(evs)-1].(*eventmodels.JobCancelled)
		if c.FromStatus != eventmodels.StatusRunning || c.CancelledBy != "ops" || c.Reason != "maintenance" {
			t.Errorf("cancelled %+v", c)
		}
		if got, _ := r.svc.Get(id); got.Status != eventmodels.StatusCancelled {
			t.Errorf("API status %s", got.Status)
		}
		if resp := do(t, http.MethodDelete, srv.URL+"/jobs/"+id, "", "", nil, &e); resp.StatusCode != http.StatusConflict {
			t.Errorf("DELETE of a finished job: %d, want 409", resp.StatusCode)
		}
		if resp := do(t, http.MethodDelete, srv.URL+"/jobs/job-424242", "", "", nil, &e); resp.StatusCode != http.StatusNotFound {
			t.Errorf("DELETE of an unknown job: %d, want 404", resp.StatusCode)
		}
		// The cancellation reached the real-time bus too.
		if err := r.realtime.WaitUntil(ctx, "job.cancelled", func(ms []*broker.Message) bool {
			return slices.ContainsFunc(ms, func(m *broker.Message) bool { return m.Header(broker.HeaderType) == eventmodels.TypeJobCancelled })
		}); err != nil {
			t.Error(err)
		}
	})
}

// TestHTTPResourceBounds: resources outside the bounds the API documents
// are refused with a 400 naming the field and the bound, through HTTP and
// Submit alike; a job at every upper bound runs to completion, every one of
// its events valid.
func TestHTTPResourceBounds(t *testing.T) {
	r := newRig(t, orchestrator.SimConfig{Seed: 2, Speed: 0})
	srv := httptest.NewServer(r.svc.Handler())
	t.Cleanup(srv.Close)
	withResources := func(res string) string {
		return strings.Replace(validBody, `{"cpu_cores":4,"gpus":1,"memory_mb":8192,"walltime_seconds":3600}`, res, 1)
	}
	cases := []struct {
		name, resources, field string
		bound                  int64
	}{
		{"cpu_cores MaxInt64", `{"cpu_cores":9223372036854775807,"gpus":1,"memory_mb":8192,"walltime_seconds":3600}`, "cpu_cores", orchestrator.MaxCPUCores},
		{"cpu_cores over", fmt.Sprintf(`{"cpu_cores":%d,"gpus":1,"memory_mb":8192,"walltime_seconds":3600}`, orchestrator.MaxCPUCores+1), "cpu_cores", orchestrator.MaxCPUCores},
		{"cpu_cores zero", `{"cpu_cores":0,"gpus":1,"memory_mb":8192,"walltime_seconds":3600}`, "cpu_cores", 1},
		{"gpus over", fmt.Sprintf(`{"cpu_cores":4,"gpus":%d,"memory_mb":8192,"walltime_seconds":3600}`, orchestrator.MaxGPUs+1), "gpus", orchestrator.MaxGPUs},
		{"gpus 2^40", `{"cpu_cores":4,"gpus":1099511627776,"memory_mb":8192,"walltime_seconds":3600}`, "gpus", orchestrator.MaxGPUs},
		{"gpus negative", `{"cpu_cores":4,"gpus":-1,"memory_mb":8192,"walltime_seconds":3600}`, "gpus", 0},
		{"memory over", fmt.Sprintf(`{"cpu_cores":4,"gpus":1,"memory_mb":%d,"walltime_seconds":3600}`, orchestrator.MaxMemoryMB+1), "memory_mb", orchestrator.MaxMemoryMB},
		{"memory MaxInt64", `{"cpu_cores":4,"gpus":1,"memory_mb":9223372036854775807,"walltime_seconds":3600}`, "memory_mb", orchestrator.MaxMemoryMB},
		{"walltime over", fmt.Sprintf(`{"cpu_cores":4,"gpus":1,"memory_mb":8192,"walltime_seconds":%d}`, orchestrator.MaxWalltimeSeconds+1), "walltime_seconds", orchestrator.MaxWalltimeSeconds},
		{"walltime negative", `{"cpu_cores":4,"gpus":1,"memory_mb":8192,"walltime_seconds":-5}`, "walltime_seconds", 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e apiError
			resp := do(t, http.MethodPost, srv.URL+"/jobs", "application/json", withResources(c.resources), nil, &e)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("status %d, want 400 (%+v)", resp.StatusCode, e)
			}
			field := "resources." + c.field
			var problems []string
			for _, f := range e.Fields {
				if f.Field == field {
					problems = append(problems, f.Problem)
				}
			}
			if len(problems) != 1 || !strings.Contains(problems[0], fmt.Sprint(c.bound)) {
				t.Errorf("problems with %s: %q, want one naming the bound %d (%+v)", field, problems, c.bound, e)
			}
		})
	}
	// The Go API refuses the same.
	over := spec(0)
	over.Resources.CPUCores = orchestrator.MaxCPUCores + 1
	var ve *eventmodels.ValidationError
	if _, err := r.svc.Submit(context.Background(), "alice", over); !errors.As(err, &ve) || !ve.Has("spec.resources.cpu_cores") {
		t.Errorf("Submit beyond MaxCPUCores: %v, want a ValidationError on spec.resources.cpu_cores", err)
	}
	if msgs := r.durable.messages(""); len(msgs) != 0 {
		t.Fatalf("%d messages published for refused jobs", len(msgs))
	}

	// At every upper bound the job is accepted and its events, CPU hours
	// and all, are valid: it completes.
	max := fmt.Sprintf(`{"cpu_cores":%d,"gpus":%d,"memory_mb":%d,"walltime_seconds":%d}`,
		orchestrator.MaxCPUCores, orchestrator.MaxGPUs, orchestrator.MaxMemoryMB, orchestrator.MaxWalltimeSeconds)
	var v orchestrator.JobView
	if resp := do(t, http.MethodPost, srv.URL+"/jobs", "application/json", withResources(max), nil, &v); resp.StatusCode != http.StatusCreated {
		t.Fatalf("job at the bounds: %d %+v", resp.StatusCode, v)
	}
	if err := r.svc.Wait(testkit.TimeoutContext(t, deadline)); err != nil {
		t.Fatal(err)
	}
	if got, _ := r.svc.Get(v.JobID); got.Status != eventmodels.StatusCompleted || got.Degraded {
		t.Errorf("job at the bounds: %+v, want completed", got)
	}
	for _, m := range decodeAll(t, r.dec, r.durable.messages(eventmodels.TopicJobMetrics)) {
		if u := m.(*eventmodels.JobMetrics).Usage; u.CPUHours <= 0 || u.GPUHours <= 0 {
			t.Errorf("job.metrics at the bounds: %+v", u)
		}
	}
}

// TestHTTPControlCharacters: identifiers with control characters (a
// newline and an ANSI escape in user_id, which would forge log lines and
// colour terminals) are refused with a 400 naming the field, as is free
// text with an escape; nothing is published.
func TestHTTPControlCharacters(t *testing.T) {
	r := newRig(t, orchestrator.SimConfig{Seed: 3, Speed: 1, QueueDelay: 10 * time.Hour})
	srv := httptest.NewServer(r.svc.Handler())
	t.Cleanup(srv.Close)
	cases := []struct{ name, from, to, field string }{
		{"user_id newline and ANSI", `"alice"`, `"alice\n\u001b[31mroot"`, "user_id"},
		{"user_id carriage return", `"alice"`, `"alice\r"`, "user_id"},
		{"project_id tab", `"proj-1"`, `"proj\t1"`, "project_id"},
		{"job_name escape", `"img"`, `"img\u001b[2J"`, "job_name"},
		{"queue C1", `"batch"`, `"batch\u009b"`, "queue"},
		{"parameter key newline", `{"field":"m87"}`, `{"fi\neld":"m87"}`, "parameters"},
		{"parameter value escape", `{"field":"m87"}`, `{"field":"m87\u001b[0m"}`, "parameters"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			body := strings.Replace(validBody, c.from, c.to, 1)
			if body == validBody {
				t.Fatalf("%s not in the body", c.from)
			}
			var e apiError
			if resp := do(t, http.MethodPost, srv.URL+"/jobs", "application/json", body, nil, &e); resp.StatusCode != http.StatusBadRequest || !slices.Contains(e.fieldNames(), c.field) {
				t.Errorf("status %d %+v, want 400 naming %s", resp.StatusCode, e, c.field)
			}
		})
	}
	if msgs := r.durable.messages(""); len(msgs) != 0 {
		t.Fatalf("%d messages published for refused jobs", len(msgs))
	}
	// A cancellation reason is free text: newlines pass, escapes do not.
	id := submitN(t, r.svc, 1)[0]
	var e apiError
	q := url.Values{"reason": {"\x1b[31mred\x1b[0m"}}.Encode()
	if resp := do(t, http.MethodDelete, srv.URL+"/jobs/"+id+"?"+q, "", "", nil, &e); resp.StatusCode != http.StatusBadRequest || !slices.Contains(e.fieldNames(), "reason") {
		t.Errorf("DELETE with an escape in the reason: %d %+v, want 400 on reason", resp.StatusCode, e)
	}
	var v orchestrator.JobView
	q = url.Values{"reason": {"wrong target\nresubmitted as job-2"}}.Encode()
	if resp := do(t, http.MethodDelete, srv.URL+"/jobs/"+id+"?"+q, "", "", nil, &v); resp.StatusCode != http.StatusAccepted {
		t.Errorf("DELETE with a two-line reason: %d %+v, want 202", resp.StatusCode, v)
	}
}
