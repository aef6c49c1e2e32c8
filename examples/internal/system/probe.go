package system

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/google/uuid"
)

// Probe is an independent consumer of the durable job topics that checks
// what the services cannot check about themselves: that every job's events
// arrive in the order they were published (event IDs are UUIDv7, taken in
// publish order, so they must increase per job) and follow the legal status
// transitions, and how long events take from publish to consume.
type Probe struct {
	mu        sync.Mutex
	seen      map[uuid.UUID]struct{}
	lastID    map[string]uuid.UUID             // job -> last event ID
	status    map[string]eventmodels.JobStatus // job -> last status
	byTopic   map[string]int64
	dups      int64
	violation []string
	latency   *hdrhistogram.Histogram // µs, publish (event timestamp) → handled

	live     map[uuid.UUID]struct{} // lifecycle events seen on the real-time path
	liveDups int64
}

// NewProbe returns an empty probe.
func NewProbe() *Probe {
	return &Probe{
		seen: map[uuid.UUID]struct{}{}, lastID: map[string]uuid.UUID{}, status: map[string]eventmodels.JobStatus{},
		byTopic: map[string]int64{}, latency: hdrhistogram.New(1, 600_000_000, 3),
		live: map[uuid.UUID]struct{}{},
	}
}

// Subscribe consumes job-lifecycle and job-metrics as group: every event
// type of the two topics goes to observe.
func (p *Probe) Subscribe(ctx context.Context, bus *events.Bus, group string) (broker.Consumer, error) {
	r := events.NewRouter()
	observe := func(ctx context.Context, e eventmodels.Event) error {
		m, _ := events.MessageFromContext(ctx)
		p.observe(m.Topic, e, m)
		return nil
	}
	events.On(r, func(ctx context.Context, e *eventmodels.JobSubmitted) error { return observe(ctx, e) })
	events.On(r, func(ctx context.Context, e *eventmodels.JobQueued) error { return observe(ctx, e) })
	events.On(r, func(ctx context.Context, e *eventmodels.JobStatusChanged) error { return observe(ctx, e) })
	events.On(r, func(ctx context.Context, e *eventmodels.JobCompleted) error { return observe(ctx, e) })
	events.On(r, func(ctx context.Context, e *eventmodels.JobFailed) error { return observe(ctx, e) })
	events.On(r, func(ctx context.Context, e *eventmodels.JobCancelled) error { return observe(ctx, e) })
	events.On(r, func(ctx context.Context, e *eventmodels.JobMetrics) error { return observe(ctx, e) })
	c, err := bus.Subscribe(ctx, broker.Subscription{Group: group, Concurrency: 8}, r)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	return c, nil
}

// SubscribeRealtime counts the lifecycle events of the real-time path with
// an ephemeral subscription, as a live dashboard does.
func (p *Probe) SubscribeRealtime(ctx context.Context, bus *events.Bus, group string) (broker.Consumer, error) {
	r := events.NewRouter()
	events.OnEvent(r, func(ctx context.Context, e eventmodels.Event) error {
		p.mu.Lock()
		defer p.mu.Unlock()
		if _, dup := p.live[e.Envelope().EventID]; dup {
			p.liveDups++
		} else {
			p.live[e.Envelope().EventID] = struct{}{}
		}
		return nil
	})
	c, err := bus.Subscribe(ctx, broker.Subscription{Topic: eventmodels.TopicJobLifecycle, Group: group, Ephemeral: true, Concurrency: 4}, r)
	if err != nil {
		return nil, fmt.Errorf("probe: subscribe to the real-time path: %w", err)
	}
	return c, nil
}

func (p *Probe) observe(topic string, e eventmodels.Event, m *broker.Message) {
	env := e.Envelope()
	now := time.Now()
	if m != nil && !m.Delivery.ReceivedAt.IsZero() {
		now = m.Delivery.ReceivedAt
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, dup := p.seen[env.EventID]; dup {
		p.dups++
		return
	}
	p.seen[env.EventID] = struct{}{}
	p.byTopic[topic]++
	if us := now.Sub(env.Timestamp).Microseconds(); us >= 0 {
		_ = p.latency.RecordValue(max(us, 1))
	}
	job := e.Key()
	if topic != eventmodels.TopicJobLifecycle {
		return
	}
	if last, ok := p.lastID[job]; ok && bytes.Compare(env.EventID[:], last[:]) < 0 {
		p.violation = append(p.violation, fmt.Sprintf("job %s: event %s (%s) arrived after the later event %s", job, env.EventID, env.EventType, last))
	}
	p.lastID[job] = env.EventID
	to, ok := eventmodels.StatusAfter(e)
	if !ok {
		return
	}
	from, known := p.status[job]
	switch {
	case !known && to != eventmodels.StatusSubmitted:
		p.violation = append(p.violation, fmt.Sprintf("job %s: first lifecycle event is %s, want job.submitted", job, env.EventType))
	case known && !eventmodels.CanTransition(from, to):
		p.violation = append(p.violation, fmt.Sprintf("job %s: illegal transition %s → %s (%s)", job, from, to, env.EventType))
	}
	p.status[job] = to
}

// ProbeReport is what the probe saw.
type ProbeReport struct {
	Events     int64            // distinct events
	ByTopic    map[string]int64 // distinct events per topic
	Duplicates int64            // redeliveries ignored
	Jobs       int
	Terminal   int      // jobs whose last status is terminal
	Realtime   int64    // distinct lifecycle events seen on the real-time path
	Violations []string // order or transition errors (empty: all good)
	// Latency publish → consume, from the event's timestamp (millisecond
	// resolution) to the delivery's receive time.
	LatencyP50, LatencyP95, LatencyP99, LatencyMax time.Duration
}

// Report returns a snapshot.
func (p *Probe) Report() ProbeReport {
	p.mu.Lock()
	defer p.mu.Unlock()
	r := ProbeReport{ByTopic: map[string]int64{}, Duplicates: p.dups, Jobs: len(p.status), Violations: append([]string(nil), p.violation...),
		Realtime: int64(len(p.live))}
	for t, n := range p.byTopic {
		r.ByTopic[t] = n
		r.Events += n
	}
	for _, s := range p.status {
		if s.Terminal() {
			r.Terminal++
		}
	}
	sort.Strings(r.Violations)
	us := func(q float64) time.Duration { return time.Duration(p.latency.ValueAtQuantile(q)) * time.Microsecond }
	r.LatencyP50, r.LatencyP95, r.LatencyP99 = us(50), us(95), us(99)
	r.LatencyMax = time.Duration(p.latency.Max()) * time.Microsecond
	return r
}
