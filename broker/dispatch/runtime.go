package dispatch

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

// DefaultGrace is how long a closing partition waits, after cancelling
// its handlers' ctx at the drain deadline, for handlers that ignore it.
const DefaultGrace = 5 * time.Second

// Config configures a Runtime.
type Config struct {
	// Subscription is validated by New (the error matches
	// broker.ErrInvalidSubscription) and completed with its defaults.
	Subscription broker.Subscription
	// Handler handles each message; New wraps it in Pipeline.
	Handler broker.Handler
	// Pipeline supplies the dead-letter publisher and its size limit, the
	// middleware, the hooks and the logger of the handler pipeline; its
	// Subscription is set by New.
	Pipeline broker.Pipeline
	// Logger receives the runtime's own records (drain timeouts, abandoned
	// handlers, a stop on failure); default Pipeline.Logger, else discard.
	Logger *slog.Logger
	// Grace bounds the wait, after the drain deadline cancelled the
	// handlers' ctx, for handlers that ignore it; past it they are
	// abandoned. Default DefaultGrace.
	Grace time.Duration
}

// Runtime runs one subscription: workers, in-flight bound, partitions.
// It implements broker.Consumer. Create it with New.
type Runtime struct {
	sub     broker.Subscription
	handler broker.Handler
	log     *slog.Logger
	grace   time.Duration

	// hctx carries the values of Subscribe's ctx, not its cancellation:
	// handlers are cancelled only at a drain deadline.
	hctx    context.Context
	unwatch func() bool

	workers []*worker
	seed    maphash.Seed
	rr      atomic.Uint32 // spreads messages without a key

	// In-flight bound: inflight counts messages handed out and not
	// resolved; Deliver waits on room when it is full.
	inflight atomic.Int64
	waiting  atomic.Bool
	roomMu   sync.Mutex
	room     chan struct{}

	stopOnce sync.Once
	stopping chan struct{}

	mu         sync.Mutex
	parts      map[*Partition]struct{}
	abandoned  map[*Delivery]struct{} // handlers past their grace, still running
	err        error
	finishOnce sync.Once
	done       chan struct{}
}

var _ broker.Consumer = (*Runtime)(nil)

// New validates cfg.Subscription, wraps the handler in the pipeline and
// starts the workers. ctx's values reach the handlers; cancelling ctx
// stops the subscription as Close does.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if err := cfg.Subscription.Validate(); err != nil {
		return nil, err
	}
	if cfg.Handler == nil {
		return nil, fmt.Errorf("%w: nil handler", broker.ErrInvalidSubscription)
	}
	sub := cfg.Subscription.WithDefaults()
	log := cfg.Logger
	if log == nil {
		log = cfg.Pipeline.Logger
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Grace <= 0 {
		cfg.Grace = DefaultGrace
	}
	p := cfg.Pipeline
	p.Subscription = sub
	if p.Logger == nil {
		p.Logger = log
	}
	r := &Runtime{
		sub:       sub,
		handler:   p.Wrap(cfg.Handler),
		log:       log,
		grace:     cfg.Grace,
		hctx:      context.WithoutCancel(ctx),
		seed:      maphash.MakeSeed(),
		room:      make(chan struct{}),
		stopping:  make(chan struct{}),
		parts:     make(map[*Partition]struct{}),
		abandoned: make(map[*Delivery]struct{}),
		done:      make(chan struct{}),
	}
	r.workers = make([]*worker, sub.Concurrency)
	for i := range r.workers {
		r.workers[i] = &worker{r: r, signal: make(chan struct{}, 1)}
		r.workers[i].state.Store(pack(0, 0, noItem))
		r.workers[i].start(nil)
	}
	r.unwatch = context.AfterFunc(ctx, r.Stop)
	return r, nil
}

// Subscription returns the subscription, defaults applied.
func (r *Runtime) Subscription() broker.Subscription { return r.sub }

// Stopping is closed when the subscription must stop: Close, the
// Subscribe ctx cancelled, Stop, or a handler failure under
// broker.OnFailureStop. The backend then stops fetching, closes its
// partitions and calls Finish.
func (r *Runtime) Stopping() <-chan struct{} { return r.stopping }

// Stop asks the subscription to stop (see Stopping) without waiting.
func (r *Runtime) Stop() { r.stopOnce.Do(func() { close(r.stopping) }) }

// Close stops the subscription and waits until it has: no new message is
// handed out, in-flight handlers finish (bounded by DrainTimeout, then
// their ctx is cancelled; after Grace more they are abandoned), finished
// work is committed. It returns the error that stopped the subscription
// (a *broker.HandlerError after a failure under OnFailureStop), nil after
// a clean stop. Close is idempotent and safe for concurrent use; it must
// not be called from the subscription's own handler.
func (r *Runtime) Close() error {
	r.Stop()
	<-r.done
	return r.Err()
}

// Done is closed when the subscription has fully stopped.
func (r *Runtime) Done() <-chan struct{} { return r.done }

// Err returns the error that stopped the subscription: nil while it runs
// and after a clean stop; a *broker.HandlerError after a handler failure
// under OnFailureStop; the backend's error given to Finish otherwise.
func (r *Runtime) Err() error {
	select {
	case <-r.done:
	default:
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.err
}

// Fail records err as the reason the subscription stops, and stops it.
// The first error recorded wins.
func (r *Runtime) Fail(err error) {
	r.mu.Lock()
	if r.err == nil {
		r.err = err
	}
	r.mu.Unlock()
	r.Stop()
}

// Finish ends the subscription once the backend has stopped fetching and
// closed every partition it opened: the workers stop (abandoned handlers
// are left to return on their own), err (if not nil, and no earlier error
// was recorded) becomes Err, and Done is closed. It is idempotent.
func (r *Runtime) Finish(err error) {
	r.finishOnce.Do(func() {
		r.Stop()
		for _, w := range r.workers {
			w.close()
		}
		for _, w := range r.workers {
			w.wait()
		}
		r.mu.Lock()
		if r.err == nil && err != nil {
			r.err = err
		}
		r.mu.Unlock()
		r.unwatch()
		close(r.done)
	})
}

// InFlight reports what the subscription holds: messages handed out and
// not finished (handlers abandoned past their grace included), and when
// the oldest of them was received (zero when none).
func (r *Runtime) InFlight() (n int, oldest time.Time) {
	r.mu.Lock()
	parts := make([]*Partition, 0, len(r.parts))
	for p := range r.parts {
		parts = append(parts, p)
	}
	for d := range r.abandoned {
		n++
		if at := d.Message.Delivery.ReceivedAt; oldest.IsZero() || at.Before(oldest) {
			oldest = at
		}
	}
	r.mu.Unlock()
	for _, p := range parts {
		k, at := p.tr.outstanding()
		n += k
		if k > 0 && (oldest.IsZero() || at.Before(oldest)) {
			oldest = at
		}
	}
	return n, oldest
}

// Report returns InFlight as a broker.InFlight of the subscription, ages
// measured at now.
func (r *Runtime) Report(now time.Time) broker.InFlight {
	n, oldest := r.InFlight()
	f := broker.InFlight{Group: r.sub.Group, Topic: r.sub.Topic, Messages: n}
	if n > 0 {
		f.OldestAge = max(now.Sub(oldest), 0)
	}
	return f
}

// acquire reserves up to want in-flight slots, waiting while none is
// free; it returns 0 when stop is closed or the subscription stops first.
func (r *Runtime) acquire(want int, stop <-chan struct{}) int {
	limit := int64(r.sub.MaxInFlight)
	for {
		cur := r.inflight.Load()
		if free := limit - cur; free > 0 {
			n := min(free, int64(want))
			if r.inflight.CompareAndSwap(cur, cur+n) {
				return int(n)
			}
			continue
		}
		r.roomMu.Lock()
		room := r.room
		r.waiting.Store(true)
		r.roomMu.Unlock()
		if r.inflight.Load() < limit {
			continue // freed between the check and the flag
		}
		select {
		case <-room:
		case <-stop:
			return 0
		case <-r.stopping:
			return 0
		}
	}
}

// release frees n in-flight slots and wakes waiting Deliver calls.
func (r *Runtime) release(n int64) {
	r.inflight.Add(-n)
	if r.waiting.Load() {
		r.roomMu.Lock()
		if r.waiting.Load() {
			r.waiting.Store(false)
			close(r.room)
			r.room = make(chan struct{})
		}
		r.roomMu.Unlock()
	}
}

// shard picks the worker of m: by key, so a key is never handled
// concurrently and keeps its order; round-robin without a key.
func (r *Runtime) shard(m *broker.Message) int {
	n := len(r.workers)
	if n == 1 {
		return 0
	}
	if m.Key == "" {
		return int(r.rr.Add(1) % uint32(n))
	}
	return int(maphash.String(r.seed, m.Key) % uint64(n))
}

// handlerFailed stops the subscription after the pipeline returned err
// for d while its ctx was alive: only OnFailureStop, or a failure policy
// that cannot be applied (a dead letter refused for good under
// FallbackStop), lets an error through.
func (r *Runtime) handlerFailed(d *Delivery, err error) {
	m := &d.Message
	r.log.Error("dispatch: handler failed; subscription stopping",
		"topic", m.Topic, "group", r.sub.Group, "partition", m.Delivery.Partition, "offset", m.Delivery.Offset,
		"key", m.Key, "policy", r.sub.OnFailure.String(), "error", err)
	r.mu.Lock()
	if r.err == nil {
		r.err = &broker.HandlerError{
			Topic: m.Topic, Partition: m.Delivery.Partition, Offset: m.Delivery.Offset, Key: m.Key,
			Attempts: max(m.Delivery.Attempt, 1), Err: err,
		}
	}
	parts := make([]*Partition, 0, len(r.parts))
	for p := range r.parts {
		parts = append(parts, p)
	}
	r.mu.Unlock()
	// Nothing more is started: the messages queued behind the failed one
	// stay unacknowledged for the group's next member.
	for _, p := range parts {
		p.aborted.Store(true)
	}
	r.Stop()
}

// errAbandoned is logged for a handler abandoned past its grace.
var errAbandoned = errors.New("dispatch: handler ignored its ctx past the grace; abandoned")
