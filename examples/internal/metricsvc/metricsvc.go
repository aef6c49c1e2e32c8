// Package metricsvc is the MetricsService of the reference system. It
// consumes job-lifecycle and job-metrics and keeps, per job and overall: jobs
// by state, event throughput, queue wait and run time percentiles, CPU and
// GPU hours per user and per project, and the consumer lag it sees. It serves
// them as Prometheus metrics (GET /metrics) and JSON (GET /summary).
//
// It is idempotent under redelivery: every event is counted once by its
// event ID, and every aggregate is built so that the order of the two topics
// does not matter (usage is cumulative, so a job's usage is its latest
// report).
package metricsvc

import (
	"context"
	"errors"
	"fmt"
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
}

// Service aggregates job events. Safe for concurrent use.
type Service struct {
	cfg Config

	mu         sync.Mutex
	seen       map[uuid.UUID]struct{}
	duplicates int64
	byType     map[string]int64
	jobs       map[string]*jobAgg
	queueWait  *hdrhistogram.Histogram // ms
	runtime    *hdrhistogram.Histogram // ms
	rate       *rateWindow
	lag        []broker.GroupLag
}

type jobAgg struct {
	user, project string
	status        eventmodels.JobStatus
	statusSeen    bool
	usage         eventmodels.Usage // latest (largest runtime) report
	usageSeen     bool
	waitSampled   bool
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
	var out []broker.Consumer
	for _, topic := range []string{eventmodels.TopicJobLifecycle, eventmodels.TopicJobMetrics} {
		c, err := sub.Subscribe(ctx, broker.Subscription{Topic: topic, Group: group, Concurrency: concurrency}, s.Handler())
		if err != nil {
			for _, c := range out {
				_ = c.Close()
			}
			return nil, fmt.Errorf("metricsvc: subscribe %s: %w", topic, err)
		}
		out = append(out, c)
	}
	return out, nil
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
	s.seen[env.EventID] = struct{}{}
	s.byType[env.EventType]++
	s.rate.add(s.cfg.Clock())
	if !eventmodels.IsJobEvent(e) && !eventmodels.IsJobMetrics(e) {
		return
	}
	j := s.jobs[e.Key()]
	if j == nil {
		j = &jobAgg{user: env.UserID}
		s.jobs[e.Key()] = j
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
		j.waitSampled = true
	}
	if !j.usageSeen || u.RuntimeMS >= j.usage.RuntimeMS {
		j.usage, j.usageSeen = u, true
	}
}

func (s *Service) sampleRuntime(j *jobAgg, ms int64) {
	if !j.runSampled {
		_ = s.runtime.RecordValue(max(ms, 1))
		j.runSampled = true
	}
}

// Percentiles summarise a distribution in milliseconds.
type Percentiles struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P95   float64 `json:"p95"`
	P99   float64 `json:"p99"`
	Max   float64 `json:"max"`
}

func percentiles(h *hdrhistogram.Histogram) Percentiles {
	return Percentiles{Count: h.TotalCount(), P50: float64(h.ValueAtQuantile(50)), P95: float64(h.ValueAtQuantile(95)),
		P99: float64(h.ValueAtQuantile(99)), Max: float64(h.Max())}
}

// Summary is what GET /summary returns.
type Summary struct {
	Events            int64              `json:"events"`
	Duplicates        int64              `json:"duplicates_ignored"`
	EventsByType      map[string]int64   `json:"events_by_type"`
	Jobs              int                `json:"jobs"`
	JobsByState       map[string]int     `json:"jobs_by_state"`
	EventsPerSecond   float64            `json:"events_per_second"`
	QueueWaitMS       Percentiles        `json:"queue_wait_ms"`
	RuntimeMS         Percentiles        `json:"runtime_ms"`
	CPUHoursByUser    map[string]float64 `json:"cpu_hours_by_user"`
	GPUHoursByUser    map[string]float64 `json:"gpu_hours_by_user"`
	CPUHoursByProject map[string]float64 `json:"cpu_hours_by_project"`
	GPUHoursByProject map[string]float64 `json:"gpu_hours_by_project"`
	ConsumerLag       []broker.GroupLag  `json:"consumer_lag"`
}

// Summary returns a consistent snapshot of every aggregate.
func (s *Service) Summary() Summary {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := Summary{
		Duplicates: s.duplicates, EventsByType: map[string]int64{}, Jobs: len(s.jobs), JobsByState: map[string]int{},
		EventsPerSecond: s.rate.perSecond(s.cfg.Clock()),
		QueueWaitMS:     percentiles(s.queueWait), RuntimeMS: percentiles(s.runtime),
		CPUHoursByUser: map[string]float64{}, GPUHoursByUser: map[string]float64{},
		CPUHoursByProject: map[string]float64{}, GPUHoursByProject: map[string]float64{},
		ConsumerLag: append([]broker.GroupLag(nil), s.lag...),
	}
	for t, n := range s.byType {
		out.EventsByType[t] = n
		out.Events += n
	}
	for _, j := range s.jobs {
		if j.statusSeen {
			out.JobsByState[string(j.status)]++
		}
		if j.usageSeen {
			out.CPUHoursByUser[j.user] += j.usage.CPUHours
			out.GPUHoursByUser[j.user] += j.usage.GPUHours
			out.CPUHoursByProject[j.project] += j.usage.CPUHours
			out.GPUHoursByProject[j.project] += j.usage.GPUHours
		}
	}
	return out
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
	lag := append([]broker.GroupLag(nil), rep.Lag...)
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
