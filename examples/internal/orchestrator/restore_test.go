package orchestrator_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/orchestrator"
	"github.com/cosmic-horizons/events/testkit"
)

// holdAt holds the nth publish attempt (counting every topic) of chosen
// jobs until its ctx ends, so that an instance stops with those jobs
// mid-lifecycle at a known point.
type holdAt struct {
	nth map[string]int // job ID → publish number to hold (from 1)

	mu     sync.Mutex
	count  map[string]int
	holds  int
	allNow chan struct{} // closed when every chosen job is held
}

func newHoldAt(nth map[string]int) *holdAt {
	return &holdAt{nth: nth, count: map[string]int{}, allNow: make(chan struct{})}
}

func (h *holdAt) hook(ctx context.Context, m *broker.Message) error {
	want, ok := h.nth[m.Key]
	if !ok {
		return nil
	}
	h.mu.Lock()
	h.count[m.Key]++
	held := h.count[m.Key] == want
	if held {
		if h.holds++; h.holds == len(h.nth) {
			close(h.allNow)
		}
	}
	h.mu.Unlock()
	if !held {
		return nil
	}
	<-ctx.Done()
	return ctx.Err()
}

func TestRestartResumesWithoutDuplicates(t *testing.T) {
	const n = 15
	sim := orchestrator.SimConfig{Seed: 11, FailureRatio: 0.4, Speed: 0, ProgressSteps: 4}
	a := newRig(t, sim)
	ctx := testkit.TimeoutContext(t, deadline)

	// Every job publishes submitted, queued, running, then per step a
	// status change (or the failure) and metrics: at least 5 publishes.
	// Jobs 5k+1…5k+4 stop before their 2nd…5th publish; jobs 5k run to
	// the end before the restart.
	ids := make([]string, n)
	nth := map[string]int{}
	for i := range ids {
		ids[i] = fmt.Sprintf("job-%06d", i+1)
		if i%5 != 0 {
			nth[ids[i]] = 1 + i%5
		}
	}
	hold := newHoldAt(nth)
	a.durable.setHook(hold.hook)
	if got := submitN(t, a.svc, n); got[n-1] != ids[n-1] {
		t.Fatalf("job IDs %v", got)
	}
	select {
	case <-hold.allNow:
	case <-ctx.Done():
		t.Fatal("not every chosen job reached its held publish")
	}
	finishedInA := n - len(nth)
	// The jobs not held finish in instance A; wait for their terminal
	// events on the real-time bus.
	if err := a.realtime.WaitUntil(ctx, "unheld jobs terminal", func(ms []*broker.Message) bool {
		terminal := 0
		for _, m := range ms {
			switch m.Header(broker.HeaderType) {
			case eventmodels.TypeJobCompleted, eventmodels.TypeJobFailed, eventmodels.TypeJobCancelled:
				terminal++
			}
		}
		return terminal == finishedInA
	}); err != nil {
		t.Fatal(err)
	}
	if err := a.svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	beforeRestart := a.lifecycle(t)
	for id := range nth {
		if evs := beforeRestart[id]; len(evs) == 0 || eventmodels.IsTerminal(evs[len(evs)-1]) {
			t.Fatalf("%s should be unfinished at the restart, has %d events", id, len(evs))
		}
	}

	// Instance B on the same durable log.
	a.durable.setHook(nil)
	// Its Replayer is the memory broker's own (the default of newRig).
	b := newRig(t, sim, withDurable(a.durableBroker, a.durable))
	rep, err := b.svc.Restore(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantEvents := 0
	for _, evs := range beforeRestart {
		wantEvents += len(evs)
	}
	if rep.Jobs != n || rep.Resumed != len(nth) || rep.Finished != finishedInA || rep.Events != wantEvents || rep.Skipped != 0 || rep.Ignored != 0 {
		t.Errorf("Restore report %+v; want %d jobs, %d resumed, %d finished, %d events", rep, n, len(nth), finishedInA, wantEvents)
	}
	if err := b.svc.Wait(ctx); err != nil {
		t.Fatal(err)
	}

	// Every job ends, each transition published once over both instances,
	// with the same outcome an uninterrupted run with the seed gives.
	after := b.lifecycle(t)
	reference := newRig(t, sim)
	submitN(t, reference.svc, n)
	if err := reference.svc.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	refLifecycle := reference.lifecycle(t)
	for _, id := range ids {
		evs := after[id]
		final := checkLifecycle(t, id, evs)
		ref := refLifecycle[id]
		if want := ref[len(ref)-1].Envelope().EventType; evs[len(evs)-1].Envelope().EventType != want || len(evs) != len(ref) {
			t.Errorf("%s: %d events ending %s after the restart; uninterrupted: %d ending %s", id, len(evs), final, len(ref), want)
		}
		v, err := b.svc.Get(id)
		if err != nil {
			t.Errorf("B does not know %s: %v", id, err)
			continue
		}
		if v.Status != final || v.Degraded || v.CorrelationID != evs[0].Envelope().CorrelationID.String() || v.UserID == "" {
			t.Errorf("%s in B: %+v, last published %s", id, v, final)
		}
	}
	// Job numbering continues after the restored jobs.
	v, err := b.svc.Submit(context.Background(), "carol", spec(1))
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("job-%06d", n+1); v.JobID != want {
		t.Errorf("first job of B is %s, want %s", v.JobID, want)
	}
}

// logReplayer replays a fixed list of messages.
type logReplayer []*broker.Message

func (l logReplayer) Replay(ctx context.Context, topic string, h broker.Handler) error {
	for i, m := range l {
		if m.Topic != topic {
			continue
		}
		m = m.Clone()
		m.Delivery = broker.Delivery{Offset: int64(i), Attempt: 1}
		if err := h(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

func TestRestoreIgnoresRedeliveryAndStaleEvents(t *testing.T) {
	codecBus, err := events.NewBus(nil) // builds messages only
	if err != nil {
		t.Fatal(err)
	}
	msg := func(e eventmodels.Event) *broker.Message {
		m, err := codecBus.Message(e)
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	corr := eventmodels.NewCorrelationID()
	opt := eventmodels.WithCorrelationID(corr)
	const id = "job-000041"
	sub := msg(eventmodels.NewJobSubmitted("dana", id, spec(2), opt))
	queued := msg(eventmodels.NewJobQueued("dana", id, "batch", 0, opt))
	running := eventmodels.NewJobStatusChanged("dana", id, eventmodels.StatusQueued, eventmodels.StatusRunning, 0, opt)
	running.Node = "hpc-node-01"
	log := logReplayer{
		sub, queued, msg(running),
		msg(eventmodels.NewJobQueued("dana", id, "batch", 0, opt)), // stale: the job runs already
		queued.Clone(), // redelivered
		sub.Clone(),    // redelivered submission
		{Topic: eventmodels.TopicJobLifecycle, Key: id, Headers: broker.Headers{{Key: broker.HeaderType, Value: eventmodels.TypeJobQueued}}, Body: []byte("not avro")},
		msg(eventmodels.NewJobQueued("erin", "job-000099", "batch", 0)), // submission no longer retained
	}
	r := newRig(t, orchestrator.SimConfig{Seed: 2, Speed: 0}, withConfig(func(c *orchestrator.Config) { c.Replayer = log }))
	rep, err := r.svc.Restore(testkit.TimeoutContext(t, deadline))
	if err != nil {
		t.Fatal(err)
	}
	want := orchestrator.RestoreReport{Events: 3, Jobs: 1, Resumed: 1, Skipped: 2, Ignored: 3}
	if rep != want {
		t.Errorf("report %+v, want %+v", rep, want)
	}
	if err := r.svc.Wait(testkit.TimeoutContext(t, deadline)); err != nil {
		t.Fatal(err)
	}
	// The job resumed from running: what it published continues the log.
	published := r.lifecycle(t)[id]
	restored := decodeAll(t, r.dec, []*broker.Message{sub, queued, msg(running)})
	checkLifecycle(t, id, append(restored, published...))
	for _, e := range published {
		if e.Envelope().CorrelationID != corr {
			t.Errorf("resumed %s with correlation ID %s, want %s", e.Envelope().EventType, e.Envelope().CorrelationID, corr)
		}
	}
	if v, _ := r.svc.Get(id); v.UserID != "dana" || !v.Status.Terminal() {
		t.Errorf("restored job %+v", v)
	}
	if v, err := r.svc.Submit(context.Background(), "dana", spec(1)); err != nil || v.JobID != "job-000042" {
		t.Errorf("next job %s (%v), want job-000042", v.JobID, err)
	}
}
