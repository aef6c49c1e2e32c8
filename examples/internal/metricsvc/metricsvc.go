// Package metricsvc is the MetricsService of the reference system. It
// consumes job-lifecycle and job-metrics and keeps, per job and overall: jobs
// by state, event throughput, queue wait and run time percentiles, CPU and
// GPU hours per user and per project, and the consumer lag it sees. It serves
// them as Prometheus metrics (GET /metrics) and JSON (GET /summary).
//
// It is idempotent under redelivery: every event is counted once by its
// event ID (remembered for the last Config.DedupeWindow distinct events),
// and every per-job aggregate is built so that neither a redelivery older
// than that window nor the order of the two topics changes it: a job's
// status only moves forward, its usage is its latest (largest run time)
// report, and each job adds one queue-wait and one run-time sample.
//
// Memory is bounded: beyond Config.RetainJobs finished jobs, the oldest
// finished job is retired: its state and CPU/GPU hours stay in the totals,
// its own record (GET /jobs/{id}) goes, and a late event for it is counted
// but does not bring it back (its ID is remembered for another RetainJobs
// retirements).
package metricsvc

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sort"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/google/uuid"
)

// Config wires the service.
type Config struct {
	// Health, if set, is polled by RefreshLag for consumer lag.
	Health broker.HealthChecker
	// Clock; default time.Now.
	Clock func() time.Time
	// Window is the span events/s is measured over; default 10s.
	Window time.Duration
	// DedupeWindow is how many distinct event IDs are remembered to ignore
	// redeliveries; default DefaultDedupeWindow. The oldest is forgotten
	// first. Per-job aggregates are idempotent without it; only the event
	// counters and the rate count a redelivery older than the window.
	DedupeWindow int
	// RetainJobs is how many finished (completed, failed, cancelled) jobs
	// keep their own record; default DefaultRetainJobs. Older finished jobs
	// are folded into the totals (see the package doc). Jobs still running
	// are always kept.
	RetainJobs int
}

// DefaultRetainJobs is the default Config.RetainJobs.
const DefaultRetainJobs = 100_000

// DefaultDedupeWindow is the default Config.DedupeWindow: far more than a
// broker redelivers after a rebalance or a restart (the uncommitted window).
const DefaultDedupeWindow = 1 << 18

// Service aggregates job events. Safe for concurrent use.
type Service struct {
	cfg    Config
	router *events.Router

	mu         sync.Mutex
	seen       *recentSet[uuid.UUID]
	duplicates int64
	byType     map[string]int64
	jobs       map[string]*jobAgg
	queueWait  *hdrhistogram.Histogram // ms
	runtime    *hdrhistogram.Histogram // ms
	waitSumMS  float64
	runSumMS   float64
	rate       *rateWindow
	lag        []Lag

	// Finished jobs in finishing order (finished[finHead:]), retired
	// beyond RetainJobs into the retired* totals; retiredIDs remembers the
	// last RetainJobs retired IDs.
	finished       []string
	finHead        int
	retiredJobs    int
	retiredByState map[eventmodels.JobStatus]int
	retiredHours   map[hoursKey]int64 // nano-hours
	retiredIDs     *recentSet[string]
	lateRetired    int64
}

// hoursKey names one total of retired hours: by user or by project, CPU or
// GPU.
type hoursKey struct {
	byProject, gpu bool
	name           string
}

type jobAgg struct {
	user, project string
	events        int64
	status        eventmodels.JobStatus
	statusSeen    bool
	usage         eventmodels.Usage // latest (largest runtime) report
	usageSeen     bool
	waitMS        int64
	waitSampled   bool
	runMS         int64
	runSampled    bool
}

// New returns a service.
func New(cfg Config) (*Service, error) {
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Window <= 0 {
		cfg.Window = 10 * time.Second
	}
	if cfg.DedupeWindow <= 0 {
		cfg.DedupeWindow = DefaultDedupeWindow
	}
	if cfg.RetainJobs <= 0 {
		cfg.RetainJobs = DefaultRetainJobs
	}
	s := &Service{
		cfg: cfg, seen: newRecentSet[uuid.UUID](cfg.DedupeWindow), byType: map[string]int64{}, jobs: map[string]*jobAgg{},
		queueWait:      hdrhistogram.New(1, 30*24*3600*1000, 3),
		runtime:        hdrhistogram.New(1, 30*24*3600*1000, 3),
		rate:           newRateWindow(cfg.Window),
		retiredByState: map[eventmodels.JobStatus]int{}, retiredHours: map[hoursKey]int64{}, retiredIDs: newRecentSet[string](cfg.RetainJobs),
	}
	s.router = s.newRouter()
	return s, nil
}

// Router returns the service's handlers: one per event type of
// job-lifecycle and job-metrics.
func (s *Service) Router() *events.Router { return s.router }

func (s *Service) newRouter() *events.Router {
	r := events.NewRouter()
	on := func(e eventmodels.Event, apply func(j *jobAgg)) error {
		s.observe(e, apply)
		return nil
	}
	events.On(r, func(_ context.Context, e *eventmodels.JobSubmitted) error {
		return on(e, func(j *jobAgg) {
			j.project = e.Spec.ProjectID
			s.setStatus(j, eventmodels.StatusSubmitted)
		})
	})
	events.On(r, func(_ context.Context, e *eventmodels.JobQueued) error {
		return on(e, func(j *jobAgg) { s.setStatus(j, eventmodels.StatusQueued) })
	})
	events.On(r, func(_ context.Context, e *eventmodels.JobStatusChanged) error {
		return on(e, func(j *jobAgg) { s.setStatus(j, e.ToStatus) })
	})
	events.On(r, func(_ context.Context, e *eventmodels.JobCompleted) error {
		return on(e, func(j *jobAgg) {
			s.setStatus(j, eventmodels.StatusCompleted)
			s.report(j, e.Usage)
			s.sampleRuntime(j, e.Usage.RuntimeMS)
		})
	})
	events.On(r, func(_ context.Context, e *eventmodels.JobFailed) error {
		return on(e, func(j *jobAgg) {
			s.setStatus(j, eventmodels.StatusFailed)
			s.sampleRuntime(j, e.RuntimeMS)
		})
	})
	events.On(r, func(_ context.Context, e *eventmodels.JobCancelled) error {
		return on(e, func(j *jobAgg) { s.setStatus(j, eventmodels.StatusCancelled) })
	})
	events.On(r, func(_ context.Context, e *eventmodels.JobMetrics) error {
		return on(e, func(j *jobAgg) {
			j.project = e.ProjectID
			s.report(j, e.Usage)
		})
	})
	return r
}

// Subscribe runs the Router for group on job-lifecycle and job-metrics.
func (s *Service) Subscribe(ctx context.Context, bus *events.Bus, group string, concurrency int) (broker.Consumer, error) {
	c, err := bus.Subscribe(ctx, broker.Subscription{Group: group, Concurrency: concurrency}, s.router)
	if err != nil {
		return nil, fmt.Errorf("metricsvc: %w", err)
	}
	return c, nil
}

// Observe counts e as if it had been consumed (tests, replays); a type the
// service does not consume is ignored.
func (s *Service) Observe(e eventmodels.Event) { _ = s.router.Dispatch(context.Background(), e) }

// observe counts one event of a job (once per event ID) and applies it to
// the job's aggregate.
func (s *Service) observe(e eventmodels.Event, apply func(j *jobAgg)) {
	env := e.Envelope()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.seen.has(env.EventID) {
		s.duplicates++
		return
	}
	s.seen.add(env.EventID)
	s.byType[env.EventType]++
	s.rate.add(s.cfg.Clock())
	if s.retiredIDs.has(e.Key()) {
		s.lateRetired++
		return
	}
	j := s.jobs[e.Key()]
	if j == nil {
		j = &jobAgg{}
		s.jobs[e.Key()] = j
	}
	wasFinished := j.statusSeen && rank(j.status) == rankFinished
	j.events++
	// Every job event carries the job's owner as user_id except
	// job.cancelled, whose user is the canceller.
	if env.EventType != eventmodels.TypeJobCancelled || j.user == "" {
		j.user = env.UserID
	}
	apply(j)
	if !wasFinished && j.statusSeen && rank(j.status) == rankFinished {
		s.finish(e.Key())
	}
}

// recentSet remembers the last n keys added; adding one more forgets the
// oldest.
type recentSet[K comparable] struct {
	set   map[K]struct{}
	order []K // ring of the keys in set, oldest at next once full
	next  int
	n     int
}

func newRecentSet[K comparable](n int) *recentSet[K] {
	return &recentSet[K]{set: map[K]struct{}{}, n: n}
}

func (r *recentSet[K]) has(k K) bool {
	_, ok := r.set[k]
	return ok
}

func (r *recentSet[K]) add(k K) {
	if len(r.order) < r.n {
		r.order = append(r.order, k)
	} else {
		delete(r.set, r.order[r.next])
		r.order[r.next] = k
		r.next = (r.next + 1) % len(r.order)
	}
	r.set[k] = struct{}{}
}

// setStatus moves a job forward; an older status arriving late (another
// partition order, a redelivery) never moves it back.
func (s *Service) setStatus(j *jobAgg, st eventmodels.JobStatus) {
	if j.statusSeen && rank(st) < rank(j.status) {
		return
	}
	j.status, j.statusSeen = st, true
}

// rankFinished is the rank of the terminal statuses.
const rankFinished = 3

func rank(s eventmodels.JobStatus) int {
	switch s {
	case eventmodels.StatusSubmitted:
		return 0
	case eventmodels.StatusQueued:
		return 1
	case eventmodels.StatusRunning:
		return 2
	}
	return rankFinished
}

// finish queues a job that just reached a terminal status and retires the
// oldest finished job beyond RetainJobs.
func (s *Service) finish(id string) {
	s.finished = append(s.finished, id)
	if len(s.finished)-s.finHead <= s.cfg.RetainJobs {
		return
	}
	old := s.finished[s.finHead]
	s.finished[s.finHead] = ""
	s.finHead++
	if s.finHead >= 1024 && s.finHead*2 >= len(s.finished) {
		s.finished = append(s.finished[:0], s.finished[s.finHead:]...)
		s.finHead = 0
	}
	s.retire(old)
}

// retire folds job id into the totals and forgets its record.
func (s *Service) retire(id string) {
	j := s.jobs[id]
	if j == nil {
		return
	}
	delete(s.jobs, id)
	s.retiredJobs++
	s.retiredByState[j.status]++
	if j.usageSeen {
		cpu, gpu := nanoHours(j.usage.CPUHours), nanoHours(j.usage.GPUHours)
		s.retiredHours[hoursKey{name: j.user}] += cpu
		s.retiredHours[hoursKey{name: j.user, gpu: true}] += gpu
		s.retiredHours[hoursKey{name: j.project, byProject: true}] += cpu
		s.retiredHours[hoursKey{name: j.project, byProject: true, gpu: true}] += gpu
	}
	s.retiredIDs.add(id)
}

func (s *Service) report(j *jobAgg, u eventmodels.Usage) {
	if !j.waitSampled && u.QueueWaitMS > 0 {
		_ = s.queueWait.RecordValue(u.QueueWaitMS)
		s.waitSumMS += float64(u.QueueWaitMS)
		j.waitMS, j.waitSampled = u.QueueWaitMS, true
	}
	if !j.usageSeen || u.RuntimeMS >= j.usage.RuntimeMS {
		j.usage, j.usageSeen = u, true
	}
}

func (s *Service) sampleRuntime(j *jobAgg, ms int64) {
	if !j.runSampled {
		ms = max(ms, 0)
		_ = s.runtime.RecordValue(ms)
		s.runSumMS += float64(ms)
		j.runMS, j.runSampled = ms, true
	}
}

// Percentiles summarise a distribution in milliseconds. The quantiles and
// Max are exact to 3 significant digits (never below the true value); Sum
// is exact.
type Percentiles struct {
	Count int64   `json:"count"`
	Sum   float64 `json:"sum"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

func percentiles(h *hdrhistogram.Histogram, sum float64) Percentiles {
	return Percentiles{Count: h.TotalCount(), Sum: sum, P50: float64(h.ValueAtQuantile(50)), P95: float64(h.ValueAtQuantile(95)),
		P99: float64(h.ValueAtQuantile(99)), Max: float64(h.Max())}
}

// Summary is what GET /summary returns.
type Summary struct {
	Events       int64            `json:"events"`
	Duplicates   int64            `json:"duplicates_ignored"`
	EventsByType map[string]int64 `json:"events_by_type"`
	Jobs         int              `json:"jobs"`
	// RetiredJobs counts the finished jobs folded into the totals beyond
	// Config.RetainJobs (included in Jobs, JobsByState and the hours), and
	// LateForRetired the events that arrived for them afterwards (counted
	// in Events only).
	RetiredJobs    int   `json:"retired_jobs"`
	LateForRetired int64 `json:"late_events_for_retired_jobs"`
	// JobsByState counts the jobs in each status that has any (GET
	// /metrics reports every status, 0 included); a job whose lifecycle
	// events were not seen yet (only its metrics) is in Jobs only.
	JobsByState       map[string]int     `json:"jobs_by_state"`
	EventsPerSecond   float64            `json:"events_per_second"`
	QueueWaitMS       Percentiles        `json:"queue_wait_ms"`
	RuntimeMS         Percentiles        `json:"runtime_ms"`
	CPUHoursByUser    map[string]float64 `json:"cpu_hours_by_user"`
	GPUHoursByUser    map[string]float64 `json:"gpu_hours_by_user"`
	CPUHoursByProject map[string]float64 `json:"cpu_hours_by_project"`
	GPUHoursByProject map[string]float64 `json:"gpu_hours_by_project"`
	ConsumerLag       []Lag              `json:"consumer_lag"`
}

// Lag is the backlog of one consumer group on one partition (or queue), as
// the last RefreshLag saw it (see broker.GroupLag).
type Lag struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"` // -1 for a queue
	Committed int64  `json:"committed"` // -1 when unknown
	End       int64  `json:"end"`       // -1 for a queue
	Lag       int64  `json:"lag"`
	Consumers int    `json:"consumers"` // -1 when unknown
}

// Summary returns a consistent snapshot of every aggregate.
func (s *Service) Summary() Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Summary{
		Duplicates: s.duplicates, EventsByType: map[string]int64{}, Jobs: len(s.jobs) + s.retiredJobs, JobsByState: map[string]int{},
		RetiredJobs: s.retiredJobs, LateForRetired: s.lateRetired,
		EventsPerSecond: s.rate.perSecond(s.cfg.Clock()),
		QueueWaitMS:     percentiles(s.queueWait, s.waitSumMS), RuntimeMS: percentiles(s.runtime, s.runSumMS),
		CPUHoursByUser: map[string]float64{}, GPUHoursByUser: map[string]float64{},
		CPUHoursByProject: map[string]float64{}, GPUHoursByProject: map[string]float64{},
		ConsumerLag: append([]Lag{}, s.lag...),
	}
	for t, n := range s.byType {
		out.EventsByType[t] = n
		out.Events += n
	}
	// Hours are summed as integer nano-hours: exact, so the totals do not
	// depend on the (random) order the jobs are visited in, and one state
	// always gives the same figures.
	cpuUser, gpuUser, cpuProject, gpuProject := map[string]int64{}, map[string]int64{}, map[string]int64{}, map[string]int64{}
	for st, n := range s.retiredByState {
		out.JobsByState[string(st)] += n
	}
	for k, v := range s.retiredHours {
		switch {
		case k.byProject && k.gpu:
			gpuProject[k.name] += v
		case k.byProject:
			cpuProject[k.name] += v
		case k.gpu:
			gpuUser[k.name] += v
		default:
			cpuUser[k.name] += v
		}
	}
	for _, j := range s.jobs {
		if j.statusSeen {
			out.JobsByState[string(j.status)]++
		}
		if j.usageSeen {
			cpu, gpu := nanoHours(j.usage.CPUHours), nanoHours(j.usage.GPUHours)
			cpuUser[j.user] += cpu
			gpuUser[j.user] += gpu
			cpuProject[j.project] += cpu
			gpuProject[j.project] += gpu
		}
	}
	for _, m := range []struct {
		from map[string]int64
		to   map[string]float64
	}{{cpuUser, out.CPUHoursByUser}, {gpuUser, out.GPUHoursByUser}, {cpuProject, out.CPUHoursByProject}, {gpuProject, out.GPUHoursByProject}} {
		for k, v := range m.from {
			m.to[k] = float64(v) / 1e9
		}
	}
	return out
}

// maxJobHours caps one job's hours (a bogus report of +Inf or 1e300 hours
// must not overflow the totals).
const maxJobHours = 1e6

// nanoHours converts hours to integer nano-hours: 0 for what is not a
// non-negative number, at most maxJobHours.
func nanoHours(h float64) int64 {
	if !(h >= 0) {
		return 0
	}
	return int64(math.Round(min(h, maxJobHours) * 1e9))
}

// JobSummary is what the service knows of one job.
type JobSummary struct {
	JobID   string `json:"job_id"`
	UserID  string `json:"user_id"`
	Project string `json:"project_id,omitempty"`
	// Status is empty while only the job's metrics were seen.
	Status eventmodels.JobStatus `json:"status,omitempty"`
	Events int64                 `json:"events"`
	// Usage is the latest resource report (nil before the first).
	Usage *eventmodels.Usage `json:"usage,omitempty"`
	// QueueWaitMS and RuntimeMS are the job's samples of the overall
	// distributions, when taken.
	QueueWaitMS *int64 `json:"queue_wait_ms,omitempty"`
	RuntimeMS   *int64 `json:"runtime_ms,omitempty"`
}

// Job returns what the service knows of one job, or false.
func (s *Service) Job(id string) (JobSummary, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j := s.jobs[id]
	if j == nil {
		return JobSummary{}, false
	}
	out := JobSummary{JobID: id, UserID: j.user, Project: j.project, Status: j.status, Events: j.events}
	if j.usageSeen {
		u := j.usage
		out.Usage = &u
	}
	if j.waitSampled {
		w := j.waitMS
		out.QueueWaitMS = &w
	}
	if j.runSampled {
		r := j.runMS
		out.RuntimeMS = &r
	}
	return out, true
}

// RefreshLag polls the configured HealthChecker and keeps its lag figures.
func (s *Service) RefreshLag(ctx context.Context) error {
	if s.cfg.Health == nil {
		return nil
	}
	rep, err := s.cfg.Health.Health(ctx)
	if err != nil {
		return fmt.Errorf("metricsvc: health: %w", err)
	}
	lag := make([]Lag, len(rep.Lag))
	for i, l := range rep.Lag {
		lag[i] = Lag{Group: l.Group, Topic: l.Topic, Partition: l.Partition, Committed: l.Committed, End: l.End, Lag: l.Lag, Consumers: l.Consumers}
	}
	sort.Slice(lag, func(i, k int) bool {
		if lag[i].Group != lag[k].Group {
			return lag[i].Group < lag[k].Group
		}
		if lag[i].Topic != lag[k].Topic {
			return lag[i].Topic < lag[k].Topic
		}
		return lag[i].Partition < lag[k].Partition
	})
	s.mu.Lock()
	s.lag = lag
	s.mu.Unlock()
	return nil
}

// PollLag calls RefreshLag now and then every interval until ctx ends, and
// returns ctx's error. A failing poll keeps the previous figures; the first
// error of a run of failures is passed to onErr (if not nil), so a broker
// that stays down is reported once, not every interval.
func (s *Service) PollLag(ctx context.Context, every time.Duration, onErr func(error)) error {
	if every <= 0 {
		return errors.New("metricsvc: PollLag needs a positive interval")
	}
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		err := s.RefreshLag(ctx)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err != nil && !failing && onErr != nil {
			onErr(err)
		}
		failing = err != nil
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// rateWindow counts events in one-second buckets over a window.
type rateWindow struct {
	buckets []int64
	secs    []int64 // unix second of each bucket
}

func newRateWindow(w time.Duration) *rateWindow {
	n := max(int(w/time.Second), 1)
	return &rateWindow{buckets: make([]int64, n), secs: make([]int64, n)}
}

func (r *rateWindow) add(t time.Time) {
	sec := t.Unix()
	i := int(sec % int64(len(r.buckets)))
	if r.secs[i] != sec {
		r.secs[i], r.buckets[i] = sec, 0
	}
	r.buckets[i]++
}

func (r *rateWindow) perSecond(now time.Time) float64 {
	cur := now.Unix()
	var n int64
	for i, sec := range r.secs {
		if cur-sec < int64(len(r.buckets)) {
			n += r.buckets[i]
		}
	}
	return float64(n) / float64(len(r.buckets))
}
