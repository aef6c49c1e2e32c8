package orchestrator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/google/uuid"
)

// Config wires the service.
type Config struct {
	// Durable publishes job-lifecycle and job-metrics events, and decodes
	// what Restore replays. Required.
	Durable *events.Bus
	// Realtime publishes the lifecycle events for live views; optional.
	Realtime *events.Bus
	// Replayer reads job-lifecycle back for Restore; optional (Restore
	// then does nothing).
	Replayer broker.Replayer
	// Sim shapes the simulated executor.
	Sim SimConfig
	// RetryMin and RetryMax bound the backoff between attempts to publish a
	// transition; defaults 50ms and 5s.
	RetryMin, RetryMax time.Duration
	// PublishAttempts is how often one event of a job is tried on the
	// durable path before the job is given up and ends failed (see
	// Service); default 30, about two minutes with the default backoff. An
	// event the bus rejects as invalid (broker.ErrInvalidMessage) is tried
	// once: retrying cannot help.
	PublishAttempts int
	// RealtimeAttempts is how often a real-time publish is tried; default 3.
	RealtimeAttempts int
	// RealtimeQueue bounds the real-time events waiting to be published.
	// Real-time publishing never slows the API or the jobs: events are
	// queued and one worker publishes them in order; when the queue is
	// full (the real-time broker is down or slow) an event is dropped and
	// counted. Default 1024.
	RealtimeQueue int
	// RealtimeTimeout bounds the publishing of one real-time event, its
	// attempts included; default 5s.
	RealtimeTimeout time.Duration
	// OnRealtimeDrop, if set, is told of every real-time event dropped
	// (queue full, or every attempt failed; an event no live view is
	// subscribed to, broker.ErrUnroutable, is not a drop), e.g. to count it in the
	// service's signals (healthsvc.Recorder.RecordDropped). It must not
	// block.
	OnRealtimeDrop func(ev eventmodels.Event, err error)
	// Clock stamps events; default time.Now.
	Clock func() time.Time
	// JobIDPrefix starts every job ID; default "job-".
	JobIDPrefix string
	// Logger; default discard.
	Logger *slog.Logger
}

// Service is the orchestrator. Its methods are safe for concurrent use.
//
// A job never stays running for ever: when one of its events cannot be
// published — the bus rejects it as invalid, or it is still unconfirmed
// after Config.PublishAttempts tries — the job is given up. It ends failed
// with a job.failed event (error class infrastructure) whose message says
// which event and why; the API shows status "failed" and that message as
// "reason". If even the job.failed cannot be published, the job is failed
// in this instance only: the API shows it failed and still degraded, with
// both causes in "reason", and as the durable log does not record its end,
// the next instance's Restore resumes it.
type Service struct {
	cfg Config
	log *slog.Logger

	mu      sync.Mutex
	jobs    map[string]*job
	next    int  // next job number
	stopped bool // Shutdown called: no runner starts any more

	ctx    context.Context // lifetime of job goroutines
	cancel context.CancelFunc
	wg     sync.WaitGroup

	rtq       chan eventmodels.Event // real-time events to publish, in order
	rtPending atomic.Int64           // queued or being published
	rtDone    chan struct{}          // closed when the real-time worker returns

	stats Stats
}

// Stats counts what the service published; the demo and tests compare them
// with what consumers saw.
type Stats struct {
	Published       atomic.Int64 // durable events confirmed
	PublishRetries  atomic.Int64 // durable publish attempts that failed
	RealtimeSent    atomic.Int64 // real-time events confirmed
	RealtimeDropped atomic.Int64 // real-time events dropped: queue full, or given up after RealtimeAttempts
	RealtimeFull    atomic.Int64 // of RealtimeDropped, those dropped because the queue was full
	// RealtimeUnrouted counts real-time events nobody was subscribed to
	// (broker.ErrUnroutable: no live view open): not sent, not dropped.
	RealtimeUnrouted atomic.Int64
}

// ErrRealtimeQueueFull is the error OnRealtimeDrop gets for an event
// dropped because Config.RealtimeQueue events were already waiting.
var ErrRealtimeQueueFull = errors.New("orchestrator: real-time queue full")

// New returns a service; its jobs run until Shutdown.
func New(cfg Config) (*Service, error) {
	if cfg.Durable == nil {
		return nil, errors.New("orchestrator: Config.Durable is required")
	}
	if cfg.RetryMin <= 0 {
		cfg.RetryMin = 50 * time.Millisecond
	}
	if cfg.RetryMax <= 0 {
		cfg.RetryMax = 5 * time.Second
	}
	if cfg.PublishAttempts <= 0 {
		cfg.PublishAttempts = 30
	}
	if cfg.RealtimeAttempts <= 0 {
		cfg.RealtimeAttempts = 3
	}
	if cfg.RealtimeQueue <= 0 {
		cfg.RealtimeQueue = 1024
	}
	if cfg.RealtimeTimeout <= 0 {
		cfg.RealtimeTimeout = 5 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.JobIDPrefix == "" {
		cfg.JobIDPrefix = "job-"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Sim = cfg.Sim.withDefaults()
	ctx, cancel := context.WithCancel(context.Background())
	s := &Service{cfg: cfg, log: cfg.Logger, jobs: map[string]*job{}, next: 1, ctx: ctx, cancel: cancel,
		rtq: make(chan eventmodels.Event, cfg.RealtimeQueue), rtDone: make(chan struct{})}
	go s.realtimeWorker()
	return s, nil
}

// record applies a transition the service published to its job. It always
// follows (the runner makes only allowed transitions); if it did not, that
// is a bug, logged.
func (s *Service) record(j *job, ev eventmodels.Event) {
	if err := j.apply(ev); err != nil {
		s.log.Error("a published transition does not follow the job's status", "job", j.id, "type", ev.Envelope().EventType, "error", err)
	}
}

// Stats returns the service's counters.
func (s *Service) Stats() *Stats { return &s.stats }

// Errors returned by the service's API.
var (
	ErrNotFound = errors.New("orchestrator: no such job")
	ErrFinished = errors.New("orchestrator: job already finished")
	ErrStopped  = errors.New("orchestrator: service is shutting down")
)

// Submit accepts a job: it validates spec, publishes job.submitted on the
// durable path and starts the job. If the publish fails (within ctx), the
// job is not accepted and the error says why; nothing is half-accepted. An
// invalid user or spec, or resources outside MaxCPUCores, MaxGPUs,
// MaxMemoryMB or MaxWalltimeSeconds, gives a *eventmodels.ValidationError
// (field names as in job.submitted: "user_id", "spec.project_id",
// "spec.resources.cpu_cores", …) and uses no job number.
func (s *Service) Submit(ctx context.Context, userID string, spec eventmodels.JobSpec) (JobView, error) {
	if s.ctx.Err() != nil {
		return JobView{}, ErrStopped
	}
	j := newJob("", userID, spec, uuid.Nil)
	// The ID is drawn after validation, so a rejected job leaves no gap.
	ev := eventmodels.NewJobSubmitted(userID, fmt.Sprintf("%s%06d", s.cfg.JobIDPrefix, 0), spec, j.opts(s.cfg.Clock)...)
	ve := &eventmodels.ValidationError{EventType: eventmodels.TypeJobSubmitted}
	if err := ev.Validate(); err != nil && !errors.As(err, &ve) {
		return JobView{}, err
	}
	checkResources(ve, "spec.resources.", spec.Resources)
	if err := ve.Err(); err != nil {
		return JobView{}, err
	}
	s.mu.Lock()
	if s.stopped {
		s.mu.Unlock()
		return JobView{}, ErrStopped
	}
	id := fmt.Sprintf("%s%06d", s.cfg.JobIDPrefix, s.next)
	s.next++
	s.mu.Unlock()
	j.id, ev.JobID = id, id
	if err := s.cfg.Durable.Publish(ctx, ev); err != nil {
		return JobView{}, fmt.Errorf("orchestrator: job not accepted, the event bus refused job.submitted: %w", err)
	}
	s.stats.Published.Add(1)
	s.publishRealtime(ev)
	s.record(j, ev)
	s.mu.Lock()
	s.jobs[id] = j
	s.mu.Unlock()
	s.start(j)
	return j.view(), nil
}

// Get returns a job.
func (s *Service) Get(id string) (JobView, error) {
	s.mu.Lock()
	j, ok := s.jobs[id]
	s.mu.Unlock()
	if !ok {
		return JobView{}, ErrNotFound
	}
	return j.view(), nil
}

// List returns every job known to this instance, in job ID order.
func (s *Service) List() []JobView {
	s.mu.Lock()
	out := make([]JobView, 0, len(s.jobs))
	for _, j := range s.jobs {
		out = append(out, j.view())
	}
	s.mu.Unlock()
	sort.Slice(out, func(i, k int) bool { return out[i].JobID < out[k].JobID })
	return out
}

// Cancel asks for a job to be cancelled; its runner publishes job.cancelled
// (with by as cancelled_by and reason) at the next step. It returns
// ErrNotFound for an unknown job, ErrFinished if the job already ended, and
// a *eventmodels.ValidationError when by or reason cannot go into a
// job.cancelled event (by empty or over eventmodels.MaxIDLength bytes,
// reason over eventmodels.MaxTextLength); then nothing changes.
func (s *Service) Cancel(id, by, reason string) (JobView, error) {
	s.mu.Lock()
	j, ok := s.jobs[id]
	s.mu.Unlock()
	if !ok {
		return JobView{}, ErrNotFound
	}
	// The runner publishes exactly this event (with the job's status): check
	// it now, or a bad value would leave the job unable to publish it.
	probe := eventmodels.NewJobCancelled(by, id, eventmodels.StatusQueued, reason)
	if err := probe.Validate(); err != nil {
		return j.view(), err
	}
	if !j.requestCancel(by, reason) {
		return j.view(), ErrFinished
	}
	return j.view(), nil
}

// Wait blocks until the runner of every job known now has returned, or ctx
// ends (ctx's error). It returns nil when every one of those jobs is
// terminal (a job given up because its events could not be published is
// terminal: failed), ErrStopped when Shutdown stopped some before they
// ended, and an error naming a job whose runner returned with the job
// unfinished otherwise.
func (s *Service) Wait(ctx context.Context) error {
	s.mu.Lock()
	jobs := make([]*job, 0, len(s.jobs))
	for _, j := range s.jobs {
		jobs = append(jobs, j)
	}
	s.mu.Unlock()
	for _, j := range jobs {
		select {
		case <-j.done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, j := range jobs {
		if j.terminal() {
			continue
		}
		if s.ctx.Err() != nil {
			return ErrStopped
		}
		v := j.view()
		return fmt.Errorf("orchestrator: job %s stopped in status %s: %s", v.JobID, v.Status, v.LastError)
	}
	return s.waitRealtime(ctx)
}

// waitRealtime waits until every real-time event queued so far was
// published or dropped.
func (s *Service) waitRealtime(ctx context.Context) error {
	if s.rtPending.Load() == 0 {
		return nil
	}
	t := time.NewTicker(5 * time.Millisecond)
	defer t.Stop()
	for s.rtPending.Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-s.rtDone:
			return nil
		case <-t.C:
		}
	}
	return nil
}

// Shutdown stops every job runner (unfinished jobs stay unfinished on the
// durable path, for the next instance's Restore) and waits for them, bounded
// by ctx. Submit then returns ErrStopped.
func (s *Service) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	s.cancel()
	done := make(chan struct{})
	go func() { s.wg.Wait(); <-s.rtDone; close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// start runs j's runner, unless j is terminal or the service stopped: then
// j.done is closed at once.
func (s *Service) start(j *job) {
	s.mu.Lock()
	if s.stopped || j.terminal() {
		s.mu.Unlock()
		close(j.done)
		return
	}
	s.wg.Add(1) // under s.mu, so never concurrently with Shutdown's Wait
	s.mu.Unlock()
	go func() {
		defer s.wg.Done()
		s.run(s.ctx, j)
	}()
}

// publish sends a transition on the durable path, retrying with backoff
// until it is confirmed, Config.PublishAttempts tries failed, or the service
// stops; the job is marked degraded while it fails. An event the bus rejects
// as invalid is not retried. Real-time delivery follows, best effort.
func (s *Service) publish(ctx context.Context, j *job, ev eventmodels.Event) error {
	backoff := s.cfg.RetryMin
	for attempt := 1; ; attempt++ {
		err := s.cfg.Durable.Publish(ctx, ev)
		if err == nil {
			j.setDegraded(nil)
			s.stats.Published.Add(1)
			break
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if errors.Is(err, broker.ErrInvalidMessage) {
			j.setDegraded(err) // a bug, not an outage: retrying cannot help
			return err
		}
		s.stats.PublishRetries.Add(1)
		j.setDegraded(err)
		if attempt >= s.cfg.PublishAttempts {
			return fmt.Errorf("not confirmed after %d attempts: %w", attempt, err)
		}
		s.log.Warn("publish failed, job waits", "job", j.id, "type", ev.Envelope().EventType, "retry_in", backoff, "error", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, s.cfg.RetryMax)
	}
	if eventmodels.IsJobEvent(ev) {
		s.publishRealtime(ev)
	}
	return nil
}

// giveUp ends j after its event ev could not be published (err): it
// publishes job.failed from the job's current status, with the cause as
// its message, or, if that cannot be published either, marks the job
// failed in this instance only. When ctx ended (shutdown) it does nothing:
// the job stays unfinished for the next instance's Restore.
func (s *Service) giveUp(ctx context.Context, j *job, ev eventmodels.Event, err error, opts []eventmodels.Option) {
	if ctx.Err() != nil {
		return
	}
	status, _ := j.state()
	if status.Terminal() {
		return
	}
	typ := ev.Envelope().EventType
	s.log.Error("job given up: an event cannot be published", "job", j.id, "type", typ, "error", err)
	// The cause quotes errors of other components: made valid free text
	// (control characters escaped) and cut to the length limit.
	reason := clipText(eventmodels.CleanText(fmt.Sprintf("%s could not be published: %v", typ, err)))
	failed := eventmodels.NewJobFailed(j.user, j.id, status, eventmodels.ErrorInfrastructure, reason, opts...)
	failed.Retryable = !errors.Is(err, broker.ErrInvalidMessage)
	perr := s.publish(ctx, j, failed)
	if perr == nil {
		s.record(j, failed)
		return
	}
	if ctx.Err() != nil {
		return
	}
	s.log.Error("job failed in this instance only: job.failed cannot be published either", "job", j.id, "error", perr)
	j.abandon(reason+"; job.failed could not be published either: "+eventmodels.CleanText(perr.Error()), s.cfg.Clock())
}

// clipText cuts s to eventmodels.MaxTextLength bytes, at a rune boundary.
func clipText(s string) string {
	if len(s) <= eventmodels.MaxTextLength {
		return s
	}
	const ellipsis = "…"
	cut := eventmodels.MaxTextLength - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// publishRealtime queues ev for the real-time worker, or drops it (and
// counts it) when the queue is full: it never blocks.
func (s *Service) publishRealtime(ev eventmodels.Event) {
	if s.cfg.Realtime == nil {
		return
	}
	s.rtPending.Add(1)
	select {
	case s.rtq <- ev:
	default:
		s.rtPending.Add(-1)
		s.stats.RealtimeFull.Add(1)
		s.dropRealtime(ev, ErrRealtimeQueueFull)
	}
}

// realtimeWorker publishes the queued real-time events in order until the
// service stops; what is left then is dropped.
func (s *Service) realtimeWorker() {
	defer close(s.rtDone)
	for {
		select {
		case <-s.ctx.Done():
			for {
				select {
				case ev := <-s.rtq:
					s.dropRealtime(ev, ErrStopped)
					s.rtPending.Add(-1)
				default:
					return
				}
			}
		case ev := <-s.rtq:
			s.sendRealtime(ev)
			s.rtPending.Add(-1)
		}
	}
}

// sendRealtime publishes ev, trying RealtimeAttempts times within
// RealtimeTimeout.
func (s *Service) sendRealtime(ev eventmodels.Event) {
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RealtimeTimeout)
	defer cancel()
	var err error
	for range s.cfg.RealtimeAttempts {
		if err = s.cfg.Realtime.Publish(ctx, ev); err == nil {
			s.stats.RealtimeSent.Add(1)
			return
		}
		if errors.Is(err, broker.ErrUnroutable) {
			s.stats.RealtimeUnrouted.Add(1) // no live view listens: nothing to deliver
			return
		}
		if ctx.Err() != nil {
			break
		}
	}
	s.dropRealtime(ev, err)
}

func (s *Service) dropRealtime(ev eventmodels.Event, err error) {
	s.stats.RealtimeDropped.Add(1)
	if s.cfg.OnRealtimeDrop != nil {
		s.cfg.OnRealtimeDrop(ev, err)
	}
	s.log.Warn("real-time publish dropped", "type", ev.Envelope().EventType, "key", ev.Key(), "error", err)
}

// jobNumber extracts the number of a job ID made by Submit, or -1.
func (s *Service) jobNumber(id string) int {
	n, err := strconv.Atoi(strings.TrimPrefix(id, s.cfg.JobIDPrefix))
	if err != nil || !strings.HasPrefix(id, s.cfg.JobIDPrefix) {
		return -1
	}
	return n
}
