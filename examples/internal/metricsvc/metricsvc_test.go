package metricsvc_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/metricsvc"
	"github.com/cosmic-horizons/events/testkit"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// newService returns a service whose clock the test moves.
func newService(t *testing.T, cfg metricsvc.Config) (*metricsvc.Service, *time.Time) {
	t.Helper()
	now := t0
	cfg.Clock = func() time.Time { return now }
	svc, err := metricsvc.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return svc, &now
}

func usage(runtimeMS int64, cpu, gpu float64) eventmodels.Usage {
	return eventmodels.Usage{CPUHours: cpu, GPUHours: gpu, RuntimeMS: runtimeMS, QueueWaitMS: 1500, Progress: 50, MemoryPeakMB: 100}
}

// oneJob is a complete job as the orchestrator publishes it: lifecycle and
// metrics, every usage report carrying the same queue wait.
func oneJob(id, owner, project string) []eventmodels.Event {
	corr := eventmodels.WithCorrelationID(eventmodels.NewCorrelationID())
	sp := eventmodels.JobSpec{ProjectID: project, Telescope: "VLT", Queue: "batch", Resources: eventmodels.Resources{CPUCores: 2, MemoryMB: 1, WalltimeSeconds: 1}}
	m := func(rt int64, cpu float64) eventmodels.Event {
		return eventmodels.NewJobMetrics(owner, id, project, usage(rt, cpu, cpu/2), corr)
	}
	done := eventmodels.NewJobCompleted(owner, id, usage(3000, 3, 1.5), corr)
	return []eventmodels.Event{
		eventmodels.NewJobSubmitted(owner, id, sp, corr),
		eventmodels.NewJobQueued(owner, id, "batch", 0, corr),
		eventmodels.NewJobStatusChanged(owner, id, eventmodels.StatusQueued, eventmodels.StatusRunning, 0, corr),
		m(1000, 1),
		eventmodels.NewJobStatusChanged(owner, id, eventmodels.StatusRunning, eventmodels.StatusRunning, 50, corr),
		m(2000, 2),
		m(3000, 3),
		done,
	}
}

func TestObserveAnyOrder(t *testing.T) {
	var evs []eventmodels.Event
	evs = append(evs, oneJob("job-1", "alice", "p1")...)
	evs = append(evs, oneJob("job-2", "bob", "p1")...)
	evs = append(evs, oneJob("job-3", "alice", "p2")...)

	ref, _ := newService(t, metricsvc.Config{})
	for _, e := range evs {
		ref.Observe(e)
	}
	want := ref.Summary()
	if want.JobsByState["completed"] != 3 || want.CPUHoursByUser["alice"] != 6 || want.GPUHoursByProject["p1"] != 3 ||
		want.QueueWaitMS.Count != 3 || want.RuntimeMS.Count != 3 || want.RuntimeMS.Sum != 9000 {
		t.Fatalf("in order: %+v", want)
	}
	// Topics and partitions interleave: any order gives the same result.
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 20 {
		shuffled := append([]eventmodels.Event(nil), evs...)
		rng.Shuffle(len(shuffled), func(a, b int) { shuffled[a], shuffled[b] = shuffled[b], shuffled[a] })
		svc, _ := newService(t, metricsvc.Config{})
		for _, e := range shuffled {
			svc.Observe(e)
		}
		if got := svc.Summary(); !reflect.DeepEqual(got, want) {
			t.Fatalf("permutation %d:\n%+v\nwant\n%+v", i, got, want)
		}
		j, ok := svc.Job("job-2")
		if !ok || j.UserID != "bob" || j.Project != "p1" || j.Status != eventmodels.StatusCompleted || j.Usage == nil || j.Usage.RuntimeMS != 3000 || *j.RuntimeMS != 3000 || *j.QueueWaitMS != 1500 || j.Events != 8 {
			t.Fatalf("permutation %d: job-2 %+v", i, j)
		}
	}
}

func TestCancellerIsNotBilled(t *testing.T) {
	for _, cancelFirst := range []bool{true, false} {
		svc, _ := newService(t, metricsvc.Config{})
		cancel := eventmodels.NewJobCancelled("ops", "job-9", eventmodels.StatusRunning, "maintenance")
		metrics := eventmodels.NewJobMetrics("carol", "job-9", "p9", usage(500, 0.5, 0))
		if cancelFirst {
			svc.Observe(cancel)
			svc.Observe(metrics)
		} else {
			svc.Observe(metrics)
			svc.Observe(cancel)
		}
		sum := svc.Summary()
		if sum.CPUHoursByUser["carol"] != 0.5 || len(sum.CPUHoursByUser) != 1 || sum.JobsByState["cancelled"] != 1 {
			t.Errorf("cancel first %v: %+v", cancelFirst, sum)
		}
	}
}

func TestDuplicatesAndWindow(t *testing.T) {
	svc, _ := newService(t, metricsvc.Config{DedupeWindow: 2})
	evs := oneJob("job-1", "alice", "p1")
	svc.Observe(evs[0])
	svc.Observe(evs[0])
	if s := svc.Summary(); s.Events != 1 || s.Duplicates != 1 {
		t.Fatalf("events %d duplicates %d, want 1 and 1", s.Events, s.Duplicates)
	}
	svc.Observe(evs[1])
	svc.Observe(evs[2]) // evs[0] falls out of the 2-event window
	svc.Observe(evs[2])
	svc.Observe(evs[0])
	s := svc.Summary()
	if s.Duplicates != 2 || s.Events != 4 {
		t.Errorf("events %d duplicates %d, want 4 (one forgotten redelivery) and 2", s.Events, s.Duplicates)
	}
	// The per-job state does not move back for the forgotten redelivery.
	if s.JobsByState["running"] != 1 || s.JobsByState["submitted"] != 0 {
		t.Errorf("jobs by state %v", s.JobsByState)
	}
}

// TestOtherEventsIgnored: the service consumes the job events only; an
// event of another type is neither counted nor makes a job.
func TestOtherEventsIgnored(t *testing.T) {
	svc, _ := newService(t, metricsvc.Config{})
	n := eventmodels.NewNotification("alice", "alice@example.org", eventmodels.ChannelEmail, eventmodels.SeverityInfo, "done", "your job finished")
	svc.Observe(n)
	s := svc.Summary()
	if s.Events != 0 || len(s.EventsByType) != 0 || s.Jobs != 0 || s.Duplicates != 0 {
		t.Errorf("%+v", s)
	}
}

func TestRate(t *testing.T) {
	svc, now := newService(t, metricsvc.Config{Window: 10 * time.Second})
	observe := func(k int) {
		for range k {
			svc.Observe(eventmodels.NewJobQueued("u", "job-1", "q", 0))
		}
	}
	observe(25)
	if r := svc.Summary().EventsPerSecond; r != 2.5 {
		t.Errorf("25 events in a 10s window: %v/s", r)
	}
	*now = t0.Add(5 * time.Second)
	observe(5)
	if r := svc.Summary().EventsPerSecond; r != 3 {
		t.Errorf("30 events in the window: %v/s", r)
	}
	*now = t0.Add(10*time.Second + 500*time.Millisecond)
	if r := svc.Summary().EventsPerSecond; r != 0.5 {
		t.Errorf("the first second left the window: %v/s, want 0.5", r)
	}
	*now = t0.Add(time.Minute)
	if r := svc.Summary().EventsPerSecond; r != 0 {
		t.Errorf("a minute later: %v/s", r)
	}
}

func TestHandler(t *testing.T) {
	svc, _ := newService(t, metricsvc.Config{})
	bus, err := events.NewBus(nil)
	if err != nil {
		t.Fatal(err)
	}
	ev := oneJob("job-1", "alice", "p1")[0]
	m, err := bus.Message(ev)
	if err != nil {
		t.Fatal(err)
	}
	// The service's Router as a broker.Handler, as a subscription runs it.
	h, err := bus.Handler(svc.Router())
	if err != nil {
		t.Fatal(err)
	}
	if err := h(context.Background(), m); err != nil {
		t.Fatalf("valid message: %v", err)
	}
	bad := m.Clone()
	bad.Body = []byte("garbage")
	if err := h(context.Background(), bad); !broker.IsPermanent(err) {
		t.Errorf("undecodable message: %v, want a permanent error (dead letter)", err)
	}
	if s := svc.Summary(); s.Events != 1 || s.JobsByState["submitted"] != 1 {
		t.Errorf("%+v", s)
	}
}

func TestConfigErrors(t *testing.T) {
	svc, _ := newService(t, metricsvc.Config{})
	if err := svc.PollLag(context.Background(), 0, nil); err == nil {
		t.Error("PollLag(0): no error")
	}
	if err := svc.RefreshLag(context.Background()); err != nil {
		t.Errorf("RefreshLag without Health: %v", err)
	}
	mem, err := memory.New(context.Background(), memory.Config{})
	if err != nil {
		t.Fatal(err)
	}
	_ = mem.Close()
	bus, err := events.NewBus(mem)
	if err != nil {
		t.Fatal(err)
	}
	if c, err := svc.Subscribe(context.Background(), bus, "g", 1); err == nil || c != nil {
		t.Errorf("Subscribe on a closed broker: %v, %v", c, err)
	}
}

// fakeHealth reports a fixed lag, failing calls 2 and 3.
type fakeHealth struct {
	mu    sync.Mutex
	calls int
	fifth chan struct{}
}

func (f *fakeHealth) Health(ctx context.Context) (*broker.HealthReport, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls == 5 {
		close(f.fifth)
	}
	if f.calls == 2 || f.calls == 3 {
		return nil, errors.New("broker unreachable")
	}
	return &broker.HealthReport{Lag: []broker.GroupLag{
		{Group: "b", Topic: "t", Partition: 1, Committed: 5, End: 9, Lag: 4, Consumers: 1},
		{Group: "a", Topic: "t", Partition: 0, Committed: 1, End: 1, Lag: 0, Consumers: 1},
	}}, nil
}

func TestPollLag(t *testing.T) {
	h := &fakeHealth{fifth: make(chan struct{})}
	svc, _ := newService(t, metricsvc.Config{Health: h})
	ctx, cancel := context.WithCancel(context.Background())
	var errs []error
	done := make(chan error)
	go func() { done <- svc.PollLag(ctx, time.Millisecond, func(err error) { errs = append(errs, err) }) }()
	wait(testkit.TimeoutContext(t, deadline), t, h.fifth, "five polls")
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("PollLag returned %v", err)
	}
	if len(errs) != 1 {
		t.Errorf("onErr called %d times for one run of failures: %v", len(errs), errs)
	}
	lag := svc.Summary().ConsumerLag
	want := []metricsvc.Lag{
		{Group: "a", Topic: "t", Partition: 0, Committed: 1, End: 1, Lag: 0, Consumers: 1},
		{Group: "b", Topic: "t", Partition: 1, Committed: 5, End: 9, Lag: 4, Consumers: 1},
	}
	if !reflect.DeepEqual(lag, want) {
		t.Errorf("lag %+v, want sorted %+v", lag, want)
	}
}

func TestMetricsWithOddLabels(t *testing.T) {
	svc, _ := newService(t, metricsvc.Config{})
	// Label values come from events: invalid UTF-8 must not break a scrape.
	svc.Observe(eventmodels.NewJobMetrics("bad\xffuser", "job-1", "proj\xfe", usage(10, 1, 0)))
	svc.Observe(eventmodels.NewJobMetrics("dave", "job-2", "p", usage(10, 2, 0)))
	srv := httptest.NewServer(svc.HTTPHandler())
	t.Cleanup(srv.Close)
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %d %v", resp.StatusCode, err)
	}
	users := map[string]float64{}
	for _, m := range fams["cosmic_user_cpu_hours"].GetMetric() {
		users[m.GetLabel()[0].GetValue()] = m.GetGauge().GetValue()
	}
	if want := map[string]float64{"bad\uFFFDuser": 1, "dave": 2}; !reflect.DeepEqual(users, want) {
		t.Errorf("cosmic_user_cpu_hours %v, want %v", users, want)
	}
}

// TestRetainJobsBoundsMemory: with RetainJobs 3, ten finished jobs leave
// three records; the totals (jobs, states, hours per user and project)
// equal those of a service that kept every job; a late report for a
// retired job is counted as an event and changes no total; running jobs are
// never retired.
func TestRetainJobsBoundsMemory(t *testing.T) {
	bounded, _ := newService(t, metricsvc.Config{RetainJobs: 3})
	unbounded, _ := newService(t, metricsvc.Config{})
	users, projects := []string{"alice", "bob", "carol"}, []string{"p1", "p2"}
	var ids []string
	for i := range 10 {
		id := fmt.Sprintf("job-%02d", i)
		ids = append(ids, id)
		for _, e := range oneJob(id, users[i%3], projects[i%2]) {
			bounded.Observe(e)
			unbounded.Observe(e)
		}
	}
	running := oneJob("job-running", "dave", "p3")[:4] // submitted … a metrics report
	for _, e := range running {
		bounded.Observe(e)
		unbounded.Observe(e)
	}

	b, u := bounded.Summary(), unbounded.Summary()
	if b.RetiredJobs != 7 || u.RetiredJobs != 0 {
		t.Fatalf("retired %d and %d jobs, want 7 and 0", b.RetiredJobs, u.RetiredJobs)
	}
	b.RetiredJobs = 0
	b.EventsPerSecond, u.EventsPerSecond = 0, 0
	if !reflect.DeepEqual(b, u) {
		t.Fatalf("totals differ from a service that kept every job:\nbounded   %+v\nunbounded %+v", b, u)
	}
	for i, id := range ids {
		if _, ok := bounded.Job(id); ok != (i >= 7) {
			t.Errorf("Job(%s) found = %v, want %v", id, ok, i >= 7)
		}
	}
	if _, ok := bounded.Job("job-running"); !ok {
		t.Error("the running job was retired")
	}

	// A late report for a retired job (among the last RetainJobs retired):
	// an event, no change to the totals.
	late := eventmodels.NewJobMetrics("alice", ids[6], "p1", usage(9000, 50, 50), eventmodels.WithCorrelationID(eventmodels.NewCorrelationID()))
	before := bounded.Summary()
	bounded.Observe(late)
	after := bounded.Summary()
	if after.LateForRetired != 1 || after.Events != before.Events+1 {
		t.Fatalf("late event: LateForRetired %d, events %d → %d; want 1 and one more", after.LateForRetired, before.Events, after.Events)
	}
	if !reflect.DeepEqual(after.CPUHoursByUser, before.CPUHoursByUser) || after.Jobs != before.Jobs {
		t.Fatalf("a late report for a retired job changed the totals: %+v → %+v", before, after)
	}
	if _, ok := bounded.Job(ids[6]); ok {
		t.Fatal("a late report brought a retired job back")
	}
}
