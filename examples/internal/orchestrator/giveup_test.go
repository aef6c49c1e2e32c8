package orchestrator_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/orchestrator"
	"github.com/cosmic-horizons/events/testkit"
)

// TestUnpublishableJobEndsFailed: a job whose next event cannot be
// published — the bus rejects it as invalid, or keeps failing past the
// retry budget — does not stay running and degraded: it ends failed, with
// the reason on the API (and, when the bus takes it, in a job.failed event
// on the durable log).
func TestUnpublishableJobEndsFailed(t *testing.T) {
	const attempts = 3
	invalid := fmt.Errorf("%w: eventmodels: invalid job.metrics: usage.cpu_hours: must be a finite, non-negative number", broker.ErrInvalidMessage)
	failOn := func(types ...string) func(context.Context, *broker.Message) error {
		return func(_ context.Context, m *broker.Message) error {
			for _, typ := range types {
				if m.Header(broker.HeaderType) == typ {
					if typ == eventmodels.TypeJobMetrics {
						return invalid
					}
					return errBusDown
				}
			}
			return nil
		}
	}
	cases := []struct {
		name string
		hook func(context.Context, *broker.Message) error
		// The failed event on the durable log: its from_status and words of
		// its message; from "" means none reached the log.
		from       eventmodels.JobStatus
		reasonHas  []string
		degraded   bool
		retryable  bool
		lifecycleN int // lifecycle events on the durable log
	}{
		{name: "invalid job.metrics", hook: failOn(eventmodels.TypeJobMetrics),
			from: eventmodels.StatusRunning, reasonHas: []string{"job.metrics", "usage.cpu_hours"}, lifecycleN: 5},
		{name: "bus fails job.status_changed past the budget", hook: failOn(eventmodels.TypeJobStatusChanged),
			from: eventmodels.StatusQueued, reasonHas: []string{"job.status_changed", fmt.Sprint(attempts, " attempts"), "bus down"}, retryable: true, lifecycleN: 3},
		{name: "cause with control characters", hook: func(_ context.Context, m *broker.Message) error {
			if m.Header(broker.HeaderType) == eventmodels.TypeJobQueued {
				return errors.New("broker said \x1b[31mNO\x1b[0m\r")
			}
			return nil
		}, from: eventmodels.StatusSubmitted, reasonHas: []string{"job.queued", `\x1b[31mNO\x1b[0m\r`}, retryable: true, lifecycleN: 2},
		{name: "job.failed cannot be published either", hook: failOn(eventmodels.TypeJobStatusChanged, eventmodels.TypeJobFailed),
			reasonHas: []string{"job.status_changed", "job.failed", "bus down"}, degraded: true, lifecycleN: 2},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := newRig(t, orchestrator.SimConfig{Seed: 1, Speed: 0}, withConfig(func(cfg *orchestrator.Config) { cfg.PublishAttempts = attempts }))
			srv := httptest.NewServer(r.svc.Handler())
			t.Cleanup(srv.Close)
			r.durable.setHook(c.hook)
			var v orchestrator.JobView
			if resp := do(t, http.MethodPost, srv.URL+"/jobs", "application/json", validBody, nil, &v); resp.StatusCode != http.StatusCreated {
				t.Fatalf("submit: %d %+v", resp.StatusCode, v)
			}
			if err := r.svc.Wait(testkit.TimeoutContext(t, deadline)); err != nil {
				t.Fatalf("Wait: %v", err)
			}
			var got orchestrator.JobView
			if resp := do(t, http.MethodGet, srv.URL+"/jobs/"+v.JobID, "", "", nil, &got); resp.StatusCode != http.StatusOK {
				t.Fatalf("GET: %d", resp.StatusCode)
			}
			if got.Status != eventmodels.StatusFailed || got.Degraded != c.degraded {
				t.Errorf("job %+v, want failed, degraded %v", got, c.degraded)
			}
			for _, w := range c.reasonHas {
				if !strings.Contains(got.Reason, w) {
					t.Errorf("reason %q does not say %q", got.Reason, w)
				}
			}
			evs := r.lifecycle(t)[v.JobID]
			if len(evs) != c.lifecycleN {
				t.Errorf("%d lifecycle events on the log, want %d", len(evs), c.lifecycleN)
			}
			if c.from == "" {
				return
			}
			checkLifecycle(t, v.JobID, evs)
			f, ok := evs[len(evs)-1].(*eventmodels.JobFailed)
			if !ok {
				t.Fatalf("last event %s, want job.failed", evs[len(evs)-1].Envelope().EventType)
			}
			if f.FromStatus != c.from || f.ErrorClass != eventmodels.ErrorInfrastructure || f.Retryable != c.retryable || f.ErrorMessage != got.Reason {
				t.Errorf("job.failed %+v; want from %s, infrastructure, retryable %v, the API's reason", f, c.from, c.retryable)
			}
		})
	}
}
