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
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/google/uuid"
)

// Config wires the service.
type Config struct {
	// Decoder decodes the consumed messages. Required.
	Decoder *broker.Decoder
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
}

// DefaultDedupeWindow is the default Config.DedupeWindow: far more than a
// broker redelivers after a rebalance or a restart (the uncommitted window).
const DefaultDedupeWindow = 1 << 18

// Service aggregates job events. Safe for concurrent use.
type Service struct {
	cfg Config

	mu         sync.Mutex
	seen       map[uuid.UUID]struct{}
	seenOrder  []uuid.UUID // ring of the IDs in seen, oldest at seenNext once full
	seenNext   int
	duplicates int64
	byType     map[string]int64
	jobs       map[string]*jobAgg
	queueWait  *hdrhistogram.Histogram // ms
	runtime    *hdrhistogram.Histogram // ms
	waitSumMS  float64
	runSumMS   float64
	rate       *rateWindow
	lag        []Lag
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
	if cfg.Decoder == nil {
		return nil, errors.New("metricsvc: Config.Decoder is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.Window <= 0 {
		cfg.Window = 10 * time.Second
	}
	if cfg.DedupeWindow <= 0 {
		cfg.DedupeWindow = DefaultDedupeWindow
	}
	return &Service{
		cfg: cfg, seen: map[uuid.UUID]struct{}{}, byType: map[string]int64{}, jobs: map[string]*jobAgg{},
		queueWait: hdrhistogram.New(1, 30*24*3600*1000, 3),
		runtime:   hdrhistogram.New(1, 30*24*3600*1000, 3),
		rate:      newRateWindow(cfg.Window),
	}, nil
}

// Handler returns the handler to subscribe to job-lifecycle and job-metrics.
// Messages that do not decode fail permanently (dead letter); other event
// types are ignored.
func (s *Service) Handler() broker.Handler {
	return broker.HandleEvent(s.cfg.Decoder, func(ctx context.Context, e eventmodels.Event) error {
		s.Observe(e)
		return nil
	})
}

// Subscribe subscribes Handler to job-lifecycle and job-metrics as group.
func (s *Service) Subscribe(ctx context.Context, sub broker.Subscriber, group string, concurrency int) ([]broker.Consumer, error) {
	cs, err := broker.SubscribeTopics(ctx, sub, []string{eventmodels.TopicJobLifecycle, eventmodels.TopicJobMetrics},
		broker.Subscription{Group: group, Concurrency: concurrency}, s.Handler())
	if err != nil {
		return nil, fmt.Errorf("metricsvc: %w", err)
	}
	return cs, nil
}

// Observe counts one event (once per event ID).
func (s *Service) Observe(e eventmodels.Event) {
	env := e.Envelope()
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, dup := s.seen[env.EventID]; dup {
		s.duplicates++
		return
	}
	s.remember(env.EventID)
	s.byType[env.EventType]++
	s.rate.add(s.cfg.Clock())
	if !eventmodels.IsJobEvent(e) && !eventmodels.IsJobMetrics(e) {
		return
	}
	j := s.jobs[e.Key()]
	if j == nil {
		j = &jobAgg{}
		s.jobs[e.Key()] = j
	}
	j.events++
	// Every job event carries the job's owner as user_id except
	// job.cancelled, whose user is the canceller.
	if _, cancel := e.(*eventmodels.JobCancelled); !cancel || j.user == "" {
		j.user = env.UserID
	}
	switch v := e.(type) {
	case *eventmodels.JobSubmitted:
		j.project = v.Spec.ProjectID
		s.setStatus(j, eventmodels.StatusSubmitted)
	case *eventmodels.JobQueued:
		s.setStatus(j, eventmodels.StatusQueued)
	case *eventmodels.JobStatusChanged:
		s.setStatus(j, v.ToStatus)
	case *eventmodels.JobCompleted:
		s.setStatus(j, eventmodels.StatusCompleted)
		s.report(j, v.Usage)
		s.sampleRuntime(j, v.Usage.RuntimeMS)
	case *eventmodels.JobFailed:
		s.setStatus(j, eventmodels.StatusFailed)
		s.sampleRuntime(j, v.RuntimeMS)
	case *eventmodels.JobCancelled:
		s.setStatus(j, eventmodels.StatusCancelled)
	case *eventmodels.JobMetrics:
		j.project = v.ProjectID
		s.report(j, v.Usage)
	}
}

// remember records id, forgetting the oldest remembered ID when the window
// is full.
func (s *Service) remember(id uuid.UUID) {
	if len(s.seenOrder) < s.cfg.DedupeWindow {
		s.seenOrder = append(s.seenOrder, id)
	} else {
		delete(s.seen, s.seenOrder[s.seenNext])
		s.seenOrder[s.seenNext] = id
		s.seenNext = (s.seenNext + 1) % len(s.seenOrder)
	}
	s.seen[id] = struct{}{}
}

// setStatus moves a job forward; an older status arriving late (another
// partition order, a redelivery) never moves it back.
func (s *Service) setStatus(j *jobAgg, st eventmodels.JobStatus) {
	if j.statusSeen && rank(st) < rank(j.status) {
		return
	}
	j.status, j.statusSeen = st, true
}

func rank(s eventmodels.JobStatus) int {
	switch s {
	case eventmodels.StatusSubmitted:
		return 0
	case eventmodels.StatusQueued:
		return 1
	case eventmodels.StatusRunning:
		return 2
	}
	return 3
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
		Duplicates: s.duplicates, EventsByType: map[string]int64{}, Jobs: len(s.jobs), JobsByState: map[string]int{},
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
