package orchestrator_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/orchestrator"
	"github.com/cosmic-horizons/events/testkit"
)

// outage fails the publishes of one event type: the first fails attempts,
// holding the last failing attempt until release is closed, so the test can
// look at the job while it is degraded.
type outage struct {
	eventType string
	fails     int
	err       error
	reached   chan struct{} // closed when the last failing attempt starts
	release   chan struct{}

	mu       sync.Mutex
	attempts int
}

func newOutage(eventType string, fails int, err error) *outage {
	return &outage{eventType: eventType, fails: fails, err: err, reached: make(chan struct{}), release: make(chan struct{})}
}

// hook is the recPublisher hook; other event types pass.
func (o *outage) hook(ctx context.Context, m *broker.Message) error {
	if m.Header(broker.HeaderType) != o.eventType {
		return nil
	}
	o.mu.Lock()
	o.attempts++
	n := o.attempts
	o.mu.Unlock()
	if n > o.fails {
		return nil
	}
	if n == o.fails {
		close(o.reached)
		select {
		case <-o.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return o.err
}

func TestPublishFailureRetries(t *testing.T) {
	r := newRig(t, orchestrator.SimConfig{Seed: 5, Speed: 0})
	const queuedFails, completedFails = 4, 2
	queued := newOutage(eventmodels.TypeJobQueued, queuedFails, errBusDown)
	// A backend's per-message failure (*broker.PublishError) is retried too.
	completed := newOutage(eventmodels.TypeJobCompleted, completedFails, &broker.PublishError{Failed: []broker.FailedMessage{{Err: errBusDown}}})
	close(completed.release)
	r.durable.setHook(func(ctx context.Context, m *broker.Message) error {
		if err := queued.hook(ctx, m); err != nil {
			return err
		}
		return completed.hook(ctx, m)
	})

	id := submitN(t, r.svc, 1)[0]
	ctx := testkit.TimeoutContext(t, deadline)
	select {
	case <-queued.reached:
	case <-ctx.Done():
		t.Fatal("job.queued never attempted", queuedFails, "times")
	}
	// Earlier attempts failed: the job waits, degraded, in its last
	// confirmed status.
	v, err := r.svc.Get(id)
	if err != nil {
		t.Fatal(err)
	}
	if !v.Degraded || !strings.Contains(v.LastError, "bus down") || v.Status != eventmodels.StatusSubmitted {
		t.Errorf("while failing: degraded %v, last error %q, status %s; want degraded in submitted", v.Degraded, v.LastError, v.Status)
	}
	if n := len(r.lifecycle(t)[id]); n != 1 {
		t.Errorf("%d lifecycle events published while job.queued fails, want 1", n)
	}
	close(queued.release)

	if err := r.svc.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	v, _ = r.svc.Get(id)
	if v.Degraded || v.LastError != "" || v.Status != eventmodels.StatusCompleted {
		t.Errorf("after recovery: %+v", v)
	}
	// Every transition exactly once (checkLifecycle counts), none lost.
	evs := r.lifecycle(t)[id]
	checkLifecycle(t, id, evs)
	var types []string
	for _, e := range evs {
		types = append(types, e.Envelope().EventType)
	}
	if types[1] != eventmodels.TypeJobQueued || types[len(types)-1] != eventmodels.TypeJobCompleted {
		t.Errorf("events %v", types)
	}
	if got := r.svc.Stats().PublishRetries.Load(); got != queuedFails+completedFails {
		t.Errorf("PublishRetries %d, want %d", got, queuedFails+completedFails)
	}
	// The real-time bus saw each transition once as well.
	if err := r.realtime.WaitFor(ctx, len(evs)); err != nil {
		t.Fatal(err)
	}
	if d := r.realtime.Duplicates(nil); len(d) != 0 || r.realtime.Count() != len(evs) {
		t.Errorf("real-time: %d messages, duplicates %v; want %d", r.realtime.Count(), d, len(evs))
	}
}

func TestShutdownWhileDegraded(t *testing.T) {
	r := newRig(t, orchestrator.SimConfig{Seed: 5, Speed: 0})
	queued := newOutage(eventmodels.TypeJobQueued, 3, errBusDown)
	r.durable.setHook(queued.hook)
	id := submitN(t, r.svc, 1)[0]
	ctx := testkit.TimeoutContext(t, deadline)
	select {
	case <-queued.reached:
	case <-ctx.Done():
		t.Fatal("job.queued not attempted")
	}
	// Shutdown ends the blocked attempt through its ctx and the runner.
	if err := r.svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if err := r.svc.Wait(ctx); !errors.Is(err, orchestrator.ErrStopped) {
		t.Errorf("Wait after Shutdown with the job unfinished: %v, want ErrStopped", err)
	}
	v, _ := r.svc.Get(id)
	if v.Status != eventmodels.StatusSubmitted || !v.Degraded {
		t.Errorf("stopped job: %+v, want submitted and degraded", v)
	}
	if n := len(r.lifecycle(t)[id]); n != 1 {
		t.Errorf("%d lifecycle events, want only job.submitted", n)
	}
}

func TestShutdownDuringSubmits(t *testing.T) {
	// Jobs wait hours to be queued, so every accepted job is still running
	// when Shutdown comes.
	r := newRig(t, orchestrator.SimConfig{Seed: 9, Speed: 1, QueueDelay: 10 * time.Hour})
	ctx := testkit.TimeoutContext(t, deadline)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		accepted []string
		refused  int
	)
	start := make(chan struct{})
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range 25 {
				v, err := r.svc.Submit(ctx, user(g), spec(i))
				mu.Lock()
				switch {
				case err == nil:
					accepted = append(accepted, v.JobID)
				case errors.Is(err, orchestrator.ErrStopped):
					refused++
				default:
					t.Errorf("Submit: %v", err)
				}
				mu.Unlock()
			}
		}()
	}
	close(start)
	if err := r.svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if len(accepted)+refused != 100 {
		t.Fatalf("%d accepted + %d refused, want 100", len(accepted), refused)
	}
	// Every accepted job is on the durable log and known to the service;
	// none ran on after Shutdown.
	lifecycle := r.lifecycle(t)
	for _, id := range accepted {
		if evs := lifecycle[id]; len(evs) != 1 || !eventmodels.IsJobSubmitted(evs[0]) {
			t.Errorf("%s: %d events on the log, want its job.submitted only", id, len(evs))
		}
		if v, err := r.svc.Get(id); err != nil || v.Status != eventmodels.StatusSubmitted {
			t.Errorf("%s: %+v %v", id, v, err)
		}
	}
	if len(lifecycle) != len(accepted) {
		t.Errorf("%d jobs on the log, %d accepted", len(lifecycle), len(accepted))
	}
	if len(accepted) > 0 {
		if err := r.svc.Wait(ctx); !errors.Is(err, orchestrator.ErrStopped) {
			t.Errorf("Wait: %v, want ErrStopped", err)
		}
	}
}
