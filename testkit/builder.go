package testkit

import (
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/google/uuid"
)

// EventBuilder makes events for tests: valid by default, filled with
// plausible random values, and deterministic for a seed.
//
// Each entry point (JobSubmitted, JobQueued, …, SystemHealth) starts a
// Draft whose event is already complete: it has a fresh event ID, a fresh
// correlation ID, a user, a timestamp from the builder's clock and a valid
// payload. Draft.With changes what a test cares about; Build returns the
// event:
//
//	b := testkit.NewEventBuilder(1)
//	done := b.JobCompleted().With(func(e *eventmodels.JobCompleted) { e.JobID = "job-42" }).Build()
//
// Events of your own types start with NewDraft, which fills their envelope
// the same way.
//
// Determinism: two Builders made with the same seed and options, asked for
// the same sequence of entry points, produce the same events, event IDs
// included. Every default is drawn when the entry point is called, so what
// a test changes on one Draft never changes any other event. The
// random streams are those of math/rand/v2 (PCG), stable for one Go release
// and module version.
//
// Clock: the builder's clock starts at a fixed time (2026-01-01T00:00:00Z
// unless WithStart says otherwise) and advances by a fixed step (1ms unless
// WithStep says otherwise) at every entry point, so timestamps increase
// strictly from one event to the next. Event and correlation IDs are UUIDv7
// built from the clock and the seeded stream, so they increase too and sort
// like the events.
//
// An EventBuilder is safe for concurrent use (its clock and random stream are
// locked); the order of events built from several goroutines, and thus
// determinism, is then up to the scheduler. The Drafts it returns are not
// safe for concurrent use.
type EventBuilder struct {
	mu      sync.Mutex
	rng     *rand.Rand
	now     time.Time
	step    time.Duration
	lastMS  int64
	seq     uint16 // UUIDv7 rand_a counter within lastMS
	jobTag  string // distinguishes the job IDs of different seeds
	jobSeq  int
	hasLast bool
}

// BuilderOption configures an EventBuilder.
type BuilderOption func(*EventBuilder)

// WithStart sets the time of the first event; default 2026-01-01T00:00:00Z.
// It is cut to UTC milliseconds, the precision events carry.
func WithStart(t time.Time) BuilderOption {
	return func(b *EventBuilder) { b.now = eventmodels.NormalizeTime(t) }
}

// WithStep sets how far the clock advances at every entry point; default
// 1ms. Values below 1ms are raised to 1ms so that timestamps (which carry
// milliseconds) still increase strictly.
func WithStep(d time.Duration) BuilderOption {
	return func(b *EventBuilder) { b.step = d }
}

var defaultStart = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// NewEventBuilder returns an EventBuilder whose random values all derive
// from seed.
func NewEventBuilder(seed int64, opts ...BuilderOption) *EventBuilder {
	b := &EventBuilder{
		rng:  rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15)),
		now:  defaultStart,
		step: time.Millisecond,
	}
	for _, o := range opts {
		o(b)
	}
	if b.step < time.Millisecond {
		b.step = time.Millisecond
	}
	b.step = b.step.Truncate(time.Millisecond)
	b.jobTag = fmt.Sprintf("%04x", b.rng.Uint32()&0xffff)
	return b
}

// Now returns the time the next event will carry.
func (b *EventBuilder) Now() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.now
}

// Advance moves the clock forward by d (a negative d is ignored), e.g. to
// leave a gap between two groups of events.
func (b *EventBuilder) Advance(d time.Duration) {
	if d <= 0 {
		return
	}
	b.mu.Lock()
	b.now = eventmodels.NormalizeTime(b.now.Add(d))
	b.mu.Unlock()
}

// NewID returns the next deterministic UUIDv7 for the clock's current time,
// e.g. for a correlation ID shared by events a test builds. IDs from one
// EventBuilder increase strictly.
func (b *EventBuilder) NewID() uuid.UUID {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.newIDLocked(b.now)
}

// NewJobID returns the next job ID: unique within the EventBuilder and
// deterministic for its seed, e.g. "job-3fa2-000007".
func (b *EventBuilder) NewJobID() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.newJobIDLocked()
}

func (b *EventBuilder) newJobIDLocked() string {
	b.jobSeq++
	return fmt.Sprintf("job-%s-%06d", b.jobTag, b.jobSeq)
}

// newIDLocked builds a UUIDv7 (RFC 9562 method 1): 48 bits of Unix
// milliseconds, a 12-bit counter that keeps IDs of one millisecond in order,
// and 62 bits from the seeded stream.
func (b *EventBuilder) newIDLocked(t time.Time) uuid.UUID {
	ms := t.UnixMilli()
	if b.hasLast && ms <= b.lastMS {
		ms = b.lastMS
		b.seq++
		if b.seq > 0x0fff { // counter exhausted: borrow the next millisecond
			ms++
			b.seq = 0
		}
	} else {
		b.seq = 0
	}
	b.lastMS, b.hasLast = ms, true
	var id uuid.UUID
	id[0], id[1], id[2] = byte(ms>>40), byte(ms>>32), byte(ms>>24)
	id[3], id[4], id[5] = byte(ms>>16), byte(ms>>8), byte(ms)
	id[6] = 0x70 | byte(b.seq>>8)
	id[7] = byte(b.seq)
	binary.BigEndian.PutUint64(id[8:], b.rng.Uint64())
	id[8] = (id[8] & 0x3f) | 0x80
	return id
}

// draw is what every entry point takes from the builder under one lock: the
// envelope and a random stream for the payload.
type draw struct {
	base eventmodels.Base
	r    *rand.Rand
}

// next fills an envelope for eventType and advances the clock. The payload
// defaults are drawn from the returned stream while b is still locked; the
// caller must call done.
func (b *EventBuilder) next(eventType string, version int) (d draw, done func()) {
	b.mu.Lock()
	t := b.now
	b.now = b.now.Add(b.step)
	d.base = eventmodels.Base{
		EventID:       b.newIDLocked(t),
		EventType:     eventType,
		Timestamp:     t,
		CorrelationID: b.newIDLocked(t),
		SchemaVersion: version,
	}
	d.r = b.rng
	d.base.UserID = pick(d.r, users)
	return d, b.mu.Unlock
}

// Events returns n valid events of every built-in type in a random mix, each
// with its own job, user and correlation ID; useful for throughput and
// round-trip tests.
func (b *EventBuilder) Events(n int) []eventmodels.Event {
	out := make([]eventmodels.Event, 0, max(n, 0))
	for range n {
		b.mu.Lock()
		kind := b.rng.IntN(10)
		b.mu.Unlock()
		var e eventmodels.Event
		switch kind {
		case 0:
			e = b.JobSubmitted().Build()
		case 1:
			e = b.JobQueued().Build()
		case 2:
			e = b.JobStatusChanged().Build()
		case 3:
			e = b.JobCompleted().Build()
		case 4:
			e = b.JobFailed().Build()
		case 5:
			e = b.JobCancelled().Build()
		case 6:
			e = b.JobMetrics().Build()
		case 7:
			e = b.Notification().Build()
		case 8:
			e = b.Audit().Build()
		default:
			e = b.SystemHealth().Build()
		}
		out = append(out, e)
	}
	return out
}

// JobLifecycle returns the events of one job's life, in order, ending in
// outcome: job.submitted, job.queued, job.status_changed queued → running
// (progress 0), progressSteps progress reports running → running with
// increasing progress, then job.completed, job.failed or job.cancelled (from
// running). A non-terminal outcome stops early: StatusSubmitted gives the
// submission only, StatusQueued adds the queuing, StatusRunning goes up to
// the last progress report. Every event is valid, all share one correlation
// ID, user and key (jobID, the partition key of topic job-lifecycle), and
// their timestamps and event IDs increase. An empty jobID takes NewJobID. An
// outcome that is not a JobStatus returns nil.
func (b *EventBuilder) JobLifecycle(jobID string, outcome eventmodels.JobStatus, progressSteps int) []eventmodels.Event {
	if !outcome.Valid() {
		return nil
	}
	if jobID == "" {
		jobID = b.NewJobID()
	}
	progressSteps = max(progressSteps, 0)
	sub := b.JobSubmitted().With(func(e *eventmodels.JobSubmitted) { e.JobID = jobID })
	user, corr, queue := sub.e.UserID, sub.e.CorrelationID, sub.e.Spec.Queue
	// same makes an event one of this job's: its key, user and correlation.
	same := func(e eventmodels.Event) {
		env := e.Envelope()
		env.UserID, env.CorrelationID = user, corr
	}
	events := []eventmodels.Event{sub.Build()}
	if outcome == eventmodels.StatusSubmitted {
		return events
	}
	events = append(events, b.JobQueued().With(func(e *eventmodels.JobQueued) {
		e.JobID, e.Queue = jobID, queue
		same(e)
	}).Build())
	if outcome == eventmodels.StatusQueued {
		return events
	}
	start := b.JobStatusChanged().With(func(e *eventmodels.JobStatusChanged) {
		e.JobID, e.FromStatus, e.ToStatus, e.Progress = jobID, eventmodels.StatusQueued, eventmodels.StatusRunning, 0
		same(e)
	})
	node := start.e.Node
	events = append(events, start.Build())
	for i := 1; i <= progressSteps; i++ {
		events = append(events, b.JobStatusChanged().With(func(e *eventmodels.JobStatusChanged) {
			e.JobID, e.FromStatus, e.ToStatus = jobID, eventmodels.StatusRunning, eventmodels.StatusRunning
			e.Progress = float64(i*100) / float64(progressSteps+1)
			e.Message, e.Node = fmt.Sprintf("step %d of %d", i, progressSteps+1), node
			same(e)
		}).Build())
	}
	runtime := int64(progressSteps+1) * b.step.Milliseconds()
	switch outcome {
	case eventmodels.StatusCompleted:
		events = append(events, b.JobCompleted().With(func(e *eventmodels.JobCompleted) {
			e.JobID, e.Usage.RuntimeMS = jobID, runtime
			same(e)
		}).Build())
	case eventmodels.StatusFailed:
		events = append(events, b.JobFailed().With(func(e *eventmodels.JobFailed) {
			e.JobID, e.FromStatus, e.RuntimeMS = jobID, eventmodels.StatusRunning, runtime
			same(e)
		}).Build())
	case eventmodels.StatusCancelled:
		events = append(events, b.JobCancelled().With(func(e *eventmodels.JobCancelled) {
			e.JobID, e.FromStatus, e.CancelledBy = jobID, eventmodels.StatusRunning, user
			same(e)
		}).Build())
	}
	return events
}
