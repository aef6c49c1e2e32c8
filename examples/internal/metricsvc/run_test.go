package metricsvc_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"sort"
	"sync"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/metricsvc"
	"github.com/cosmic-horizons/events/examples/internal/orchestrator"
	"github.com/cosmic-horizons/events/testkit"
)

const deadline = 30 * time.Second

// gate holds the publish of one event type of one job until released, so a
// test can cancel the job at a known point.
type gate struct {
	inner broker.Publisher

	mu    sync.Mutex
	holds map[string]*hold // job ID → hold
}

type hold struct {
	eventType string
	nth, seen int
	reached   chan struct{}
	release   chan struct{}
}

func (g *gate) holdAt(jobID, eventType string, nth int) *hold {
	h := &hold{eventType: eventType, nth: nth, reached: make(chan struct{}), release: make(chan struct{})}
	g.mu.Lock()
	g.holds[jobID] = h
	g.mu.Unlock()
	return h
}

func (g *gate) Publish(ctx context.Context, msgs ...*broker.Message) error {
	for _, m := range msgs {
		g.mu.Lock()
		h := g.holds[m.Key]
		held := false
		if h != nil && m.Header(broker.HeaderType) == h.eventType {
			h.seen++
			held = h.seen == h.nth
		}
		g.mu.Unlock()
		if held {
			close(h.reached)
			select {
			case <-h.release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return g.inner.Publish(ctx, msgs...)
}

func (g *gate) Close() error { return nil }

func wait(ctx context.Context, t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-ctx.Done():
		t.Fatalf("waiting for %s: %v", what, ctx.Err())
	}
}

func spec(i int) eventmodels.JobSpec {
	return eventmodels.JobSpec{
		ProjectID: fmt.Sprintf("proj-%d", i%3), Telescope: "VLT", Queue: "batch",
		Resources: eventmodels.Resources{CPUCores: 1 + i%6, GPUs: i % 3, MemoryMB: 2048, WalltimeSeconds: 7200},
	}
}

// truth is what the test computes itself from the captured events.
type truth struct {
	byType                     map[string]int64
	cpuUser, gpuUser           map[string]float64
	cpuProject, gpuProject     map[string]float64
	queueWaits, runtimes       []int64
	lastUsage                  map[string]eventmodels.Usage
	owner                      map[string]string
	lifecycleCount, totalCount int
}

func computeTruth(t *testing.T, lifecycle, metrics []eventmodels.Event) truth {
	tr := truth{byType: map[string]int64{}, cpuUser: map[string]float64{}, gpuUser: map[string]float64{},
		cpuProject: map[string]float64{}, gpuProject: map[string]float64{}, lastUsage: map[string]eventmodels.Usage{}, owner: map[string]string{}}
	project := map[string]string{}
	for _, e := range lifecycle {
		tr.byType[e.Envelope().EventType]++
		switch v := e.(type) {
		case *eventmodels.JobSubmitted:
			tr.owner[v.JobID], project[v.JobID] = v.UserID, v.Spec.ProjectID
		case *eventmodels.JobCompleted:
			tr.runtimes = append(tr.runtimes, v.Usage.RuntimeMS)
		case *eventmodels.JobFailed:
			tr.runtimes = append(tr.runtimes, v.RuntimeMS)
		}
	}
	// A job's usage is cumulative: the last report (in publish order, kept
	// per key by the topic) is the job's total.
	for _, e := range metrics {
		tr.byType[e.Envelope().EventType]++
		m := e.(*eventmodels.JobMetrics)
		if m.UserID != tr.owner[m.JobID] || m.ProjectID != project[m.JobID] {
			t.Errorf("%s: metrics of user %s project %s, submitted by %s in %s", m.JobID, m.UserID, m.ProjectID, tr.owner[m.JobID], project[m.JobID])
		}
		tr.lastUsage[m.JobID] = m.Usage
	}
	for id, u := range tr.lastUsage {
		tr.cpuUser[tr.owner[id]] += u.CPUHours
		tr.gpuUser[tr.owner[id]] += u.GPUHours
		tr.cpuProject[project[id]] += u.CPUHours
		tr.gpuProject[project[id]] += u.GPUHours
		tr.queueWaits = append(tr.queueWaits, u.QueueWaitMS)
	}
	tr.lifecycleCount, tr.totalCount = len(lifecycle), len(lifecycle)+len(metrics)
	return tr
}

func closeEnough(a, b float64) bool { return math.Abs(a-b) <= 1e-9*math.Max(1, math.Abs(b)) }

func checkHours(t *testing.T, what string, got, want map[string]float64) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: %v, want %v", what, got, want)
		return
	}
	for k, w := range want {
		if g, ok := got[k]; !ok || !closeEnough(g, w) {
			t.Errorf("%s[%q] = %v, want %v", what, k, g, w)
		}
	}
}

// checkPercentiles compares p with the exact distribution of values: the
// histogram keeps 3 significant digits and never reports below the value
// at the rank hdrhistogram uses (round(q·n), at least 1).
func checkPercentiles(t *testing.T, what string, p metricsvc.Percentiles, values []int64) {
	t.Helper()
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	var sum float64
	for _, v := range sorted {
		sum += float64(v)
	}
	if p.Count != int64(len(sorted)) || p.Sum != sum {
		t.Errorf("%s: count %d sum %v, want %d and %v", what, p.Count, p.Sum, len(sorted), sum)
		return
	}
	for _, q := range []struct {
		q   float64
		got float64
	}{{50, p.P50}, {95, p.P95}, {99, p.P99}, {100, p.Max}} {
		rank := min(max(int(q.q/100*float64(len(sorted))+0.5), 1), len(sorted))
		want := float64(sorted[rank-1])
		if q.got < want || q.got > want*1.001+1 {
			t.Errorf("%s: P%v = %v, exact %v", what, q.q, q.got, want)
		}
	}
}

func TestOrchestratorRun(t *testing.T) {
	ctx := testkit.TimeoutContext(t, deadline)
	// The platform's partition counts (10 on each job topic), as on Kafka.
	mem, err := memory.New(ctx, memory.Config{Topics: events.PlatformTopics()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = mem.Close() })

	// The test's own view of both topics, and the service under test: all
	// groups join before anything is published.
	captures := map[string]*testkit.MessageCapture{}
	for _, topic := range []string{eventmodels.TopicJobLifecycle, eventmodels.TopicJobMetrics} {
		captures[topic] = testkit.NewMessageCapture()
		c, err := mem.Subscribe(ctx, broker.Subscription{Topic: topic, Group: "truth"}, captures[topic].Handle)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = c.Close() })
	}
	clock := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	svc, err := metricsvc.New(metricsvc.Config{Health: mem, Clock: func() time.Time { return clock }})
	if err != nil {
		t.Fatal(err)
	}
	consumeBus, err := events.NewBus(mem)
	if err != nil {
		t.Fatal(err)
	}
	consumer, err := svc.Subscribe(ctx, consumeBus, "metricsvc", 3)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = consumer.Close() })

	// The orchestrator run: 40 jobs, some failing; job 1 cancelled while
	// queued, job 2 while running (after its first usage report), by "ops".
	g := &gate{inner: mem, holds: map[string]*hold{}}
	bus, err := events.NewBus(g)
	if err != nil {
		t.Fatal(err)
	}
	orch, err := orchestrator.New(orchestrator.Config{Durable: bus, Sim: orchestrator.SimConfig{Seed: 21, FailureRatio: 0.3, Speed: 0, ProgressSteps: 4}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = orch.Shutdown(context.Background()) })
	holdQueued := g.holdAt("job-000001", eventmodels.TypeJobQueued, 1)
	holdMetrics := g.holdAt("job-000002", eventmodels.TypeJobMetrics, 1)
	const n = 40
	for i := range n {
		if _, err := orch.Submit(ctx, fmt.Sprintf("user-%d", i%4), spec(i)); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []*hold{holdQueued, holdMetrics} {
		wait(ctx, t, h.reached, "held publish")
	}
	for _, id := range []string{"job-000001", "job-000002"} {
		if _, err := orch.Cancel(id, "ops", "test"); err != nil {
			t.Fatal(err)
		}
	}
	close(holdQueued.release)
	close(holdMetrics.release)
	if err := orch.Wait(ctx); err != nil {
		t.Fatal(err)
	}
	views := orch.List()
	if v := views[1]; v.Status != eventmodels.StatusCancelled {
		t.Fatalf("job 2 ended %s, want cancelled", v.Status)
	}

	// Truth from the captured events.
	total := int(orch.Stats().Published.Load())
	testkit.Eventually(ctx, t, "captures complete", func() bool {
		return captures[eventmodels.TopicJobLifecycle].Count()+captures[eventmodels.TopicJobMetrics].Count() >= total
	})
	tr := computeTruth(t, captures[eventmodels.TopicJobLifecycle].Events(), captures[eventmodels.TopicJobMetrics].Events())
	if tr.totalCount != total {
		t.Fatalf("captured %d events, orchestrator published %d", tr.totalCount, total)
	}
	// The orchestrator's contract the truth relies on: job.completed
	// carries the same usage as the job's last job.metrics.
	for _, c := range testkit.EventsOf[*eventmodels.JobCompleted](captures[eventmodels.TopicJobLifecycle]) {
		if c.Usage != tr.lastUsage[c.JobID] {
			t.Errorf("%s: completed usage %+v, last metrics %+v", c.JobID, c.Usage, tr.lastUsage[c.JobID])
		}
	}

	testkit.Eventually(ctx, t, "metricsvc consumed everything", func() bool { return svc.Summary().Events == int64(total) })
	sum := svc.Summary()
	wantStates := map[string]int{}
	for _, v := range views {
		wantStates[string(v.Status)]++
	}
	if !reflect.DeepEqual(sum.JobsByState, wantStates) || sum.Jobs != n {
		t.Errorf("jobs %d by state %v; orchestrator: %d, %v", sum.Jobs, sum.JobsByState, n, wantStates)
	}
	if wantStates["failed"] == 0 || wantStates["completed"] == 0 || wantStates["cancelled"] != 2 {
		t.Errorf("run ended %v: want completed, failed and 2 cancelled jobs", wantStates)
	}
	if !reflect.DeepEqual(sum.EventsByType, tr.byType) || sum.Duplicates != 0 {
		t.Errorf("events by type %v (duplicates %d), want %v", sum.EventsByType, sum.Duplicates, tr.byType)
	}
	checkHours(t, "CPU hours by user", sum.CPUHoursByUser, tr.cpuUser)
	checkHours(t, "GPU hours by user", sum.GPUHoursByUser, tr.gpuUser)
	checkHours(t, "CPU hours by project", sum.CPUHoursByProject, tr.cpuProject)
	checkHours(t, "GPU hours by project", sum.GPUHoursByProject, tr.gpuProject)
	checkPercentiles(t, "queue wait", sum.QueueWaitMS, tr.queueWaits)
	checkPercentiles(t, "runtime", sum.RuntimeMS, tr.runtimes)
	if want := float64(total) / 10; sum.EventsPerSecond != want { // every event in one second of a 10 s window
		t.Errorf("events/s %v, want %v", sum.EventsPerSecond, want)
	}
	// Job 2 was cancelled by "ops" after a usage report: its hours are its
	// owner's.
	if j, ok := svc.Job("job-000002"); !ok || j.UserID != "user-1" || j.Status != eventmodels.StatusCancelled || j.Usage == nil || j.Usage.CPUHours <= 0 {
		t.Errorf("job 2: %+v", j)
	}
	if _, ok := sum.CPUHoursByUser["ops"]; ok {
		t.Errorf("hours billed to the canceller: %v", sum.CPUHoursByUser)
	}

	// Redelivery of every message changes nothing but the duplicates.
	all := append(captures[eventmodels.TopicJobLifecycle].Messages(), captures[eventmodels.TopicJobMetrics].Messages()...)
	for _, m := range all {
		m.Delivery = broker.Delivery{}
	}
	if err := mem.Publish(ctx, all...); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(ctx, t, "duplicates counted", func() bool { return svc.Summary().Duplicates == int64(len(all)) })
	again := svc.Summary()
	again.Duplicates = sum.Duplicates
	if !reflect.DeepEqual(again, sum) {
		t.Errorf("redelivery changed the summary:\nbefore %+v\nafter  %+v", sum, again)
	}

	// Lag as the broker reports it, once the group committed everything.
	testkit.Eventually(ctx, t, "metricsvc lag 0", func() bool {
		if err := svc.RefreshLag(ctx); err != nil {
			t.Fatal(err)
		}
		var parts, behind int
		for _, l := range svc.Summary().ConsumerLag {
			if l.Group == "metricsvc" {
				parts++
				behind += int(l.Lag)
			}
		}
		return parts == 20 && behind == 0 // 10 partitions on each topic
	})

	checkHTTP(t, svc, int64(len(all)))
}

func checkHTTP(t *testing.T, svc *metricsvc.Service, duplicates int64) {
	srv := httptest.NewServer(svc.HTTPHandler())
	t.Cleanup(srv.Close)
	sum := svc.Summary()

	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d", resp.StatusCode)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("GET /metrics is not Prometheus text: %v", err)
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		f := fams[name]
		if f == nil {
			return 0, false
		}
	next:
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if labels[lp.GetName()] != lp.GetValue() {
					continue next
				}
			}
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				return m.GetCounter().GetValue(), true
			case dto.MetricType_GAUGE:
				return m.GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	expect := func(name string, labels map[string]string, want float64) {
		t.Helper()
		if got, ok := value(name, labels); !ok || !closeEnough(got, want) {
			t.Errorf("%s%v = %v (present %v), want %v", name, labels, got, ok, want)
		}
	}
	for _, state := range eventmodels.JobStatuses() { // every state, 0 included
		expect("cosmic_jobs", map[string]string{"state": string(state)}, float64(sum.JobsByState[string(state)]))
	}
	for typ, n := range sum.EventsByType {
		expect("cosmic_events_total", map[string]string{"type": typ}, float64(n))
	}
	expect("cosmic_events_duplicates_total", nil, float64(duplicates))
	expect("cosmic_events_per_second", nil, sum.EventsPerSecond)
	for u, h := range sum.CPUHoursByUser {
		expect("cosmic_user_cpu_hours", map[string]string{"user": u}, h)
		expect("cosmic_user_gpu_hours", map[string]string{"user": u}, sum.GPUHoursByUser[u])
	}
	for p, h := range sum.CPUHoursByProject {
		expect("cosmic_project_cpu_hours", map[string]string{"project": p}, h)
		expect("cosmic_project_gpu_hours", map[string]string{"project": p}, sum.GPUHoursByProject[p])
	}
	for _, l := range sum.ConsumerLag {
		expect("cosmic_consumer_lag", map[string]string{"group": l.Group, "topic": l.Topic, "partition": fmt.Sprint(l.Partition)}, float64(l.Lag))
	}
	for name, p := range map[string]metricsvc.Percentiles{"cosmic_job_queue_wait_seconds": sum.QueueWaitMS, "cosmic_job_runtime_seconds": sum.RuntimeMS} {
		f := fams[name]
		if f == nil || f.GetType() != dto.MetricType_SUMMARY || len(f.GetMetric()) != 1 {
			t.Errorf("%s: %v", name, f)
			continue
		}
		s := f.GetMetric()[0].GetSummary()
		if s.GetSampleCount() != uint64(p.Count) || !closeEnough(s.GetSampleSum(), p.Sum/1000) {
			t.Errorf("%s: count %d sum %v, want %d and %v", name, s.GetSampleCount(), s.GetSampleSum(), p.Count, p.Sum/1000)
		}
		quantiles := map[float64]float64{}
		for _, q := range s.GetQuantile() {
			quantiles[q.GetQuantile()] = q.GetValue()
		}
		if !closeEnough(quantiles[0.5], p.P50/1000) || !closeEnough(quantiles[0.95], p.P95/1000) || !closeEnough(quantiles[0.99], p.P99/1000) {
			t.Errorf("%s: quantiles %v, want %v/%v/%v ms", name, quantiles, p.P50, p.P95, p.P99)
		}
	}
	names := make([]string, 0, len(fams))
	for name := range fams {
		names = append(names, name)
	}
	sort.Strings(names)
	t.Logf("series: %v", names)

	// GET /summary is the Summary, field for field.
	resp2, err := http.Get(srv.URL + "/summary")
	if err != nil {
		t.Fatal(err)
	}
	defer resp2.Body.Close()
	var got metricsvc.Summary
	d := json.NewDecoder(resp2.Body)
	d.DisallowUnknownFields()
	if err := d.Decode(&got); err != nil || resp2.StatusCode != http.StatusOK || resp2.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /summary: %d %q %v", resp2.StatusCode, resp2.Header.Get("Content-Type"), err)
	}
	if !reflect.DeepEqual(got, sum) {
		t.Errorf("GET /summary:\n%+v\nwant\n%+v", got, sum)
	}

	// GET /jobs/{id}.
	var j metricsvc.JobSummary
	resp3, err := http.Get(srv.URL + "/jobs/job-000003")
	if err != nil {
		t.Fatal(err)
	}
	defer resp3.Body.Close()
	if err := json.NewDecoder(resp3.Body).Decode(&j); err != nil || resp3.StatusCode != http.StatusOK || j.JobID != "job-000003" || !j.Status.Terminal() || j.Usage == nil {
		t.Errorf("GET /jobs/job-000003: %d %+v %v", resp3.StatusCode, j, err)
	}
	resp4, err := http.Get(srv.URL + "/jobs/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp4.Body.Close()
	if resp4.StatusCode != http.StatusNotFound {
		t.Errorf("GET /jobs/nope: %d", resp4.StatusCode)
	}
}
