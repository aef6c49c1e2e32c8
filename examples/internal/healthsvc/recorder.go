package healthsvc

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cosmic-horizons/events/broker"
)

// Defaults of a RecorderConfig.
const (
	DefaultRecorderSlot = 5 * time.Second
	DefaultRecorderSpan = time.Minute
)

// Histogram range of handler durations, in microseconds: 1µs to 10 minutes
// (longer attempts are recorded as 10 minutes), 2 significant digits.
const (
	histMinMicros = 1
	histMaxMicros = int64(10 * time.Minute / time.Microsecond)
	histSigFigs   = 2
)

// RecorderConfig configures a Recorder. The zero value is ready to use.
type RecorderConfig struct {
	// Slot is the time resolution of the windows: counts and latencies are
	// kept per slot, and a window is a whole number of slots ending with
	// the current one. Default 5s.
	Slot time.Duration
	// Span is the longest window kept; longer windows asked of Signals are
	// cut to it. Default 1m.
	Span time.Duration
	// Service names the service a consumed message belongs to; default its
	// subscription group (Message.Delivery.Group), else its topic.
	Service func(m *broker.Message) string
	// Clock; default time.Now.
	Clock func() time.Time
}

// Recorder is a broker hook that keeps, per service and per time slot,
// handler attempts (succeeded and failed), dead letters, discards and a
// histogram of handler durations, and is the SignalSource over them. Pass
// it with the backend's hooks — memory.Config.Hooks, kafkabus.Config.Hooks,
// rabbitbus.Config.Hooks — next to (or instead of) otelevents.Metrics, and
// every subscription of that backend feeds it; use Middleware for handlers
// run outside a backend's pipeline. It is safe for concurrent use; the
// hook methods take one short per-service lock.
//
// A Recorder sees the consumers of its own process only. A health service
// watching other processes reads their Recorders through SignalsHandler and
// Remote.
type Recorder struct {
	slot    time.Duration
	slots   int
	service func(*broker.Message) string
	clock   func() time.Time

	mu       sync.RWMutex
	services map[string]*ring
}

// ring is one service's slots, a circular buffer indexed by slot number.
type ring struct {
	mu      sync.Mutex
	slots   []slotStats
	dlTotal int64
}

type slotStats struct {
	n                          int64 // slot number: unix nanoseconds / slot
	handled, failed, dead, dis int64
	dropped                    int64
	hist                       *hdrhistogram.Histogram // nil until an attempt is recorded
}

var (
	_ broker.HookHandled    = (*Recorder)(nil)
	_ broker.HookDeadLetter = (*Recorder)(nil)
	_ broker.HookDiscard    = (*Recorder)(nil)
	_ SignalSource          = (*Recorder)(nil)
)

// NewRecorder returns an empty Recorder.
func NewRecorder(cfg RecorderConfig) *Recorder {
	if cfg.Slot <= 0 {
		cfg.Slot = DefaultRecorderSlot
	}
	if cfg.Span <= 0 {
		cfg.Span = DefaultRecorderSpan
	}
	if cfg.Service == nil {
		cfg.Service = func(m *broker.Message) string {
			if m.Delivery.Group != "" {
				return m.Delivery.Group
			}
			return m.Topic
		}
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	slots := int((cfg.Span + cfg.Slot - 1) / cfg.Slot)
	return &Recorder{slot: cfg.Slot, slots: max(slots, 1), service: cfg.Service, clock: cfg.Clock, services: map[string]*ring{}}
}

// OnHandled implements broker.HookHandled: one handler attempt.
func (r *Recorder) OnHandled(_ context.Context, m *broker.Message, took time.Duration, err error) {
	r.Record(r.service(m), took, err)
}

// OnDeadLetter implements broker.HookDeadLetter.
func (r *Recorder) OnDeadLetter(_ context.Context, m *broker.Message, _ error) {
	r.add(r.service(m), func(s *slotStats, rg *ring) { s.dead++; rg.dlTotal++ })
}

// OnDiscard implements broker.HookDiscard.
func (r *Recorder) OnDiscard(_ context.Context, m *broker.Message, _ error) {
	r.add(r.service(m), func(s *slotStats, _ *ring) { s.dis++ })
}

// Record counts one handler attempt of service that took took and returned
// err. The hooks call it; so can code that handles messages by other means.
func (r *Recorder) Record(service string, took time.Duration, err error) {
	us := min(max(took.Microseconds(), histMinMicros), histMaxMicros)
	r.add(service, func(s *slotStats, _ *ring) {
		if err != nil {
			s.failed++
		} else {
			s.handled++
		}
		if s.hist == nil {
			s.hist = hdrhistogram.New(histMinMicros, histMaxMicros, histSigFigs)
		}
		_ = s.hist.RecordValue(us) // in range by construction
	})
}

// RecordOutcome counts one attempt of service that has no duration of its
// own to report, such as one channel's delivery inside a handler that
// succeeds either way: err nil counts as handled, else as failed, and
// deadLettered also counts a dead letter. A notification service counts
// its channels' deliveries so: a webhook that gives up and parks the
// notification shows in the error rate although the handler returns nil.
func (r *Recorder) RecordOutcome(service string, err error, deadLettered bool) {
	r.add(service, func(s *slotStats, rg *ring) {
		if err != nil {
			s.failed++
		} else {
			s.handled++
		}
		if deadLettered {
			s.dead++
			rg.dlTotal++
		}
	})
}

// RecordDropped counts n events service dropped on purpose (a bounded
// best-effort queue that was full, a publish given up); they show as
// ServiceSignals.Dropped and raise AlertEventsDropped.
func (r *Recorder) RecordDropped(service string, n int64) {
	r.add(service, func(s *slotStats, _ *ring) { s.dropped += n })
}

// Middleware returns a middleware that records every attempt of the
// handler it wraps under service, for handlers run outside a backend's
// pipeline (a Replayer). Inside a pipeline pass the Recorder as a hook
// instead; using both counts every attempt twice.
func (r *Recorder) Middleware(service string) broker.Middleware {
	return func(next broker.Handler) broker.Handler {
		return func(ctx context.Context, m *broker.Message) error {
			start := time.Now()
			err := next(ctx, m)
			r.Record(service, time.Since(start), err)
			return err
		}
	}
}

func (r *Recorder) ring(service string) *ring {
	r.mu.RLock()
	rg := r.services[service]
	r.mu.RUnlock()
	if rg != nil {
		return rg
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if rg = r.services[service]; rg == nil {
		rg = &ring{slots: make([]slotStats, r.slots)}
		for i := range rg.slots {
			rg.slots[i].n = -1
		}
		r.services[service] = rg
	}
	return rg
}

// add applies fn to service's current slot, recycling the slot if it
// still holds an older one.
func (r *Recorder) add(service string, fn func(*slotStats, *ring)) {
	n := r.clock().UnixNano() / int64(r.slot)
	rg := r.ring(service)
	rg.mu.Lock()
	defer rg.mu.Unlock()
	s := &rg.slots[int(n%int64(r.slots))]
	if s.n != n {
		h := s.hist
		if h != nil {
			h.Reset()
		}
		*s = slotStats{n: n, hist: h}
	}
	fn(s, rg)
}

// Signals implements SignalSource: the last window (rounded up to whole
// slots, at most the span) of every service seen, sorted by service.
func (r *Recorder) Signals(window time.Duration) []ServiceSignals {
	k := int64(min(max((window+r.slot-1)/r.slot, 1), time.Duration(r.slots)))
	now := r.clock().UnixNano() / int64(r.slot)
	r.mu.RLock()
	names := make([]string, 0, len(r.services))
	for name := range r.services {
		names = append(names, name)
	}
	r.mu.RUnlock()
	out := make([]ServiceSignals, 0, len(names))
	for _, name := range names {
		out = append(out, r.ring(name).signals(name, now, k))
	}
	slices.SortFunc(out, func(a, b ServiceSignals) int { return cmp.Compare(a.Service, b.Service) })
	return out
}

// signals sums the slots numbered (now-k, now].
func (rg *ring) signals(name string, now, k int64) ServiceSignals {
	out := ServiceSignals{Service: name}
	var merged *hdrhistogram.Histogram
	rg.mu.Lock()
	defer rg.mu.Unlock()
	out.DeadLetteredTotal = rg.dlTotal
	for i := range rg.slots {
		s := &rg.slots[i]
		if s.n <= now-k || s.n > now {
			continue
		}
		out.Handled += s.handled
		out.Failed += s.failed
		out.DeadLettered += s.dead
		out.Discarded += s.dis
		out.Dropped += s.dropped
		if s.hist != nil && s.hist.TotalCount() > 0 {
			if merged == nil {
				merged = hdrhistogram.New(histMinMicros, histMaxMicros, histSigFigs)
			}
			merged.Merge(s.hist)
		}
	}
	if merged != nil {
		out.P50 = time.Duration(merged.ValueAtQuantile(50)) * time.Microsecond
		out.P99 = time.Duration(merged.ValueAtQuantile(99)) * time.Microsecond
	}
	return out
}
