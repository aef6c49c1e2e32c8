package orchestrator_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/orchestrator"
	"github.com/cosmic-horizons/events/testkit"
)

func TestLifecycle(t *testing.T) {
	const n = 50
	r := newRig(t, orchestrator.SimConfig{Seed: 7, FailureRatio: 0.3, Speed: 0, ProgressSteps: 4, MetricsEvery: 2})
	// A consumer group on the durable broker sees what was confirmed (one
	// capture per topic: order holds per topic and key).
	durableSeen := map[string]*testkit.MessageCapture{}
	for _, topic := range []string{eventmodels.TopicJobLifecycle, eventmodels.TopicJobMetrics} {
		durableSeen[topic] = testkit.NewMessageCapture()
		c, err := r.durableBroker.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: "test"}, durableSeen[topic].Handle)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
	}

	ids := submitN(t, r.svc, n)
	ctx := testkit.TimeoutContext(t, deadline)
	if err := r.svc.Wait(ctx); err != nil {
		t.Fatalf("Wait: %v", err)
	}

	lifecycle := r.lifecycle(t)
	metrics := byJob(decodeAll(t, r.dec, r.durable.messages(eventmodels.TopicJobMetrics)))
	views := r.svc.List()
	if len(views) != n {
		t.Fatalf("List has %d jobs, want %d", len(views), n)
	}
	finals := map[eventmodels.JobStatus]int{}
	lifecycleCount := 0
	for i, v := range views {
		if v.JobID != ids[i] {
			t.Errorf("List()[%d] = %s, want %s (job ID order)", i, v.JobID, ids[i])
		}
		evs := lifecycle[v.JobID]
		lifecycleCount += len(evs)
		final := checkLifecycle(t, v.JobID, evs)
		if v.Status != final {
			t.Errorf("%s: API status %s, last published %s", v.JobID, v.Status, final)
		}
		if v.Degraded || v.LastError != "" {
			t.Errorf("%s: degraded %v (%q) without any publish failure", v.JobID, v.Degraded, v.LastError)
		}
		if v.CorrelationID != evs[0].Envelope().CorrelationID.String() {
			t.Errorf("%s: API correlation ID %s, events %s", v.JobID, v.CorrelationID, evs[0].Envelope().CorrelationID)
		}
		finals[final]++

		// job.metrics: same key and correlation ID; the last one is the
		// final usage, equal to job.completed's.
		ms := metrics[v.JobID]
		if v.Events != len(evs)+len(ms) {
			t.Errorf("%s: API counts %d events published, the log has %d lifecycle and %d job.metrics", v.JobID, v.Events, len(evs), len(ms))
		}
		if len(ms) == 0 {
			t.Errorf("%s: no job.metrics", v.JobID)
			continue
		}
		for _, m := range ms {
			if m.Envelope().CorrelationID.String() != v.CorrelationID {
				t.Errorf("%s: job.metrics with correlation ID %s", v.JobID, m.Envelope().CorrelationID)
			}
			if jm := m.(*eventmodels.JobMetrics); jm.ProjectID != v.Spec.ProjectID || jm.Node == "" || jm.Node != v.Node {
				t.Errorf("%s: job.metrics project %q node %q, want %q on %q", v.JobID, jm.ProjectID, jm.Node, v.Spec.ProjectID, v.Node)
			}
		}
		last := ms[len(ms)-1].(*eventmodels.JobMetrics)
		switch end := evs[len(evs)-1].(type) {
		case *eventmodels.JobCompleted:
			if end.Usage != last.Usage {
				t.Errorf("%s: completed usage %+v, last metrics %+v", v.JobID, end.Usage, last.Usage)
			}
			if end.Usage.Progress != 100 || end.Usage.CPUHours <= 0 {
				t.Errorf("%s: completed usage %+v", v.JobID, end.Usage)
			}
		case *eventmodels.JobFailed:
			if end.RuntimeMS != last.Usage.RuntimeMS || end.ErrorMessage == "" || !end.ErrorClass.Valid() {
				t.Errorf("%s: failed %+v after metrics %+v", v.JobID, end, last.Usage)
			}
		default:
			t.Errorf("%s: ends with %s", v.JobID, end.Envelope().EventType)
		}
	}
	if finals[eventmodels.StatusCompleted] == 0 || finals[eventmodels.StatusFailed] == 0 {
		t.Errorf("final statuses %v: want both completed and failed jobs with FailureRatio 0.3", finals)
	}
	if len(lifecycle) != n {
		t.Errorf("lifecycle events of %d jobs, want %d", len(lifecycle), n)
	}

	// The durable consumer sees every confirmed message, keyed by job ID.
	total := len(r.durable.messages(""))
	for topic, capture := range durableSeen {
		if err := capture.WaitFor(ctx, len(r.durable.messages(topic))); err != nil {
			t.Fatal(err)
		}
		for _, m := range capture.Messages() {
			if m.Key == "" || m.Header(broker.HeaderSubject) != m.Key {
				t.Errorf("message %s on %s: key %q, subject %q", m.Header(broker.HeaderType), m.Topic, m.Key, m.Header(broker.HeaderSubject))
			}
		}
		capture.AssertOrderedByKey(t, testkit.EventTimeSeq)
	}

	// The real-time bus carries the same lifecycle events, in order.
	if err := r.realtime.WaitFor(ctx, lifecycleCount); err != nil {
		t.Fatal(err)
	}
	rt := byJob(r.realtime.Events())
	for _, id := range ids {
		if got, want := eventIDs(rt[id]), eventIDs(lifecycle[id]); !slices.Equal(got, want) {
			t.Errorf("%s: real-time events %v, durable %v", id, got, want)
		}
	}
	for _, e := range r.realtime.Events() {
		if !eventmodels.IsJobEvent(e) {
			t.Errorf("real-time bus carried %s", e.Envelope().EventType)
		}
	}

	st := r.svc.Stats()
	if got := st.Published.Load(); got != int64(total) {
		t.Errorf("Stats.Published %d, broker confirmed %d", got, total)
	}
	if got := st.RealtimeSent.Load(); got != int64(lifecycleCount) {
		t.Errorf("Stats.RealtimeSent %d, want %d", got, lifecycleCount)
	}
	if st.PublishRetries.Load() != 0 || st.RealtimeDropped.Load() != 0 {
		t.Errorf("retries %d, dropped %d: want 0", st.PublishRetries.Load(), st.RealtimeDropped.Load())
	}
}

// outcome is what the simulator decided for a job.
type outcome struct {
	final    string
	class    eventmodels.ErrorClass
	node     string
	usage    eventmodels.Usage
	progress []float64
}

func runOutcomes(t *testing.T, seed uint64) []outcome {
	t.Helper()
	r := newRig(t, orchestrator.SimConfig{Seed: seed, FailureRatio: 0.4, Speed: 0})
	ids := submitN(t, r.svc, 20)
	if err := r.svc.Wait(testkit.TimeoutContext(t, deadline)); err != nil {
		t.Fatal(err)
	}
	lifecycle := r.lifecycle(t)
	metrics := byJob(decodeAll(t, r.dec, r.durable.messages(eventmodels.TopicJobMetrics)))
	out := make([]outcome, len(ids))
	for i, id := range ids {
		evs := lifecycle[id]
		o := outcome{final: evs[len(evs)-1].Envelope().EventType}
		for _, e := range evs {
			if sc, ok := e.(*eventmodels.JobStatusChanged); ok {
				o.progress = append(o.progress, sc.Progress)
				o.node = sc.Node
			}
			if f, ok := e.(*eventmodels.JobFailed); ok {
				o.class = f.ErrorClass
			}
		}
		if ms := metrics[id]; len(ms) > 0 {
			o.usage = ms[len(ms)-1].(*eventmodels.JobMetrics).Usage
		}
		out[i] = o
	}
	return out
}

func TestDeterminism(t *testing.T) {
	a, b := runOutcomes(t, 42), runOutcomes(t, 42)
	c := runOutcomes(t, 43)
	differ := 0
	for i := range a {
		if !outcomeEqual(a[i], b[i]) {
			t.Errorf("job %d: seed 42 gave %+v, then %+v", i, a[i], b[i])
		}
		if !outcomeEqual(a[i], c[i]) {
			differ++
		}
	}
	if differ == 0 {
		t.Error("seeds 42 and 43 gave identical outcomes for every job")
	}
}

func outcomeEqual(x, y outcome) bool {
	return x.final == y.final && x.class == y.class && x.node == y.node && x.usage == y.usage && slices.Equal(x.progress, y.progress)
}

func TestRealtimeFailureDoesNotStopJobs(t *testing.T) {
	rt := testkit.NewMockPublisher()
	rt.FailNext(1<<30, errors.New("real-time broker down"))
	r := newRig(t, orchestrator.SimConfig{Seed: 1, Speed: 0}, withRealtimePublisher(rt))
	submitN(t, r.svc, 3)
	if err := r.svc.Wait(testkit.TimeoutContext(t, deadline)); err != nil {
		t.Fatal(err)
	}
	lifecycle := r.lifecycle(t)
	var events int
	for id, evs := range lifecycle {
		if checkLifecycle(t, id, evs) != eventmodels.StatusCompleted {
			t.Errorf("%s did not complete", id)
		}
		events += len(evs)
	}
	st := r.svc.Stats()
	if st.RealtimeDropped.Load() != int64(events) || st.RealtimeSent.Load() != 0 {
		t.Errorf("real-time dropped %d sent %d, want %d and 0", st.RealtimeDropped.Load(), st.RealtimeSent.Load(), events)
	}
	for _, v := range r.svc.List() {
		if v.Degraded {
			t.Errorf("%s degraded by a real-time failure", v.JobID)
		}
	}
}

func TestNewAndSubmitErrors(t *testing.T) {
	if _, err := orchestrator.New(orchestrator.Config{}); err == nil {
		t.Error("New without Durable: no error")
	}
	r := newRig(t, orchestrator.SimConfig{Speed: 0})
	bad := spec(0)
	bad.Resources.CPUCores = 0
	_, err := r.svc.Submit(context.Background(), "", bad)
	var ve *eventmodels.ValidationError
	if !errors.As(err, &ve) || !ve.Has("user_id") || !ve.Has("spec.resources.cpu_cores") {
		t.Fatalf("Submit of an invalid job: %v, want a ValidationError on user_id and spec.resources.cpu_cores", err)
	}
	// A rejected job uses no number; a bus that refuses fails the submit.
	r.durable.setHook(func(context.Context, *broker.Message) error { return errors.New("bus down") })
	if _, err := r.svc.Submit(context.Background(), "alice", spec(1)); err == nil {
		t.Fatal("Submit with the bus down: no error")
	}
	r.durable.setHook(nil)
	v, err := r.svc.Submit(context.Background(), "alice", spec(1))
	if err != nil {
		t.Fatal(err)
	}
	// The refused submission drew number 1 (its event may have reached the
	// log); the invalid one drew none.
	if v.JobID != "job-000002" {
		t.Errorf("job ID %s, want job-000002", v.JobID)
	}
	if _, err := r.svc.Get("job-000001"); !errors.Is(err, orchestrator.ErrNotFound) {
		t.Errorf("Get of the refused job: %v, want ErrNotFound", err)
	}
	if err := r.svc.Shutdown(testkit.TimeoutContext(t, deadline)); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.Submit(context.Background(), "alice", spec(1)); !errors.Is(err, orchestrator.ErrStopped) {
		t.Errorf("Submit after Shutdown: %v, want ErrStopped", err)
	}
}

// TestRealtimeOutageDoesNotSlowSubmit: with the real-time broker hanging
// (every publish waits for its timeout, as during a RabbitMQ outage),
// Submit returns at once; the bounded queue drops what does not fit,
// counts it and reports each drop.
func TestRealtimeOutageDoesNotSlowSubmit(t *testing.T) {
	rt := testkit.NewMockPublisher()
	rt.SetLatency(time.Hour)
	var dropped atomic.Int64
	r := newRig(t, orchestrator.SimConfig{Seed: 1, Speed: 0}, withRealtimePublisher(rt), withConfig(func(c *orchestrator.Config) {
		c.RealtimeQueue = 2
		c.RealtimeTimeout = time.Hour
		c.OnRealtimeDrop = func(eventmodels.Event, error) { dropped.Add(1) }
	}))
	start := time.Now()
	submitN(t, r.svc, 20)
	if took := time.Since(start); took > 3*time.Second {
		t.Fatalf("20 submits took %v with the real-time broker hanging: the API waits for it", took)
	}
	st := r.svc.Stats()
	// One event is being published (hanging), two wait: every other
	// job.submitted was dropped as the queue was full.
	if full := st.RealtimeFull.Load(); full < 17 || full != dropped.Load() || st.RealtimeSent.Load() != 0 {
		t.Fatalf("queue-full drops %d, reported %d, sent %d; want at least 17, all reported, none sent", full, dropped.Load(), st.RealtimeSent.Load())
	}
}
