package dispatch

import (
	"context"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

// Delivery is one fetched message as the backend hands it to the runtime:
// the backend fills Message (its Delivery too: partition, offset or tag,
// Attempt 1, Redelivered, ReceivedAt, Group) and Pos, the message's
// position in its partition, increasing along the partition. Get one from
// NewDelivery.
type Delivery struct {
	Message broker.Message
	// Pos is what Commit and Ack receive: a Kafka or memory offset, an
	// AMQP delivery tag.
	Pos int64

	p         *Partition
	seq       uint64
	resolved  atomic.Bool
	abandoned atomic.Bool
}

// NewDelivery returns a Delivery to fill for this partition, with an empty
// Message.Headers (append the headers to it). Call it, like Deliver, from
// the one goroutine that feeds the partition. Deliveries are reused: once
// a handler has returned, the runtime recycles its Delivery, the Message
// and the Message's Headers for another message of the partition.
// That is the broker.Handler contract: a handler that keeps a message
// beyond its call keeps m.Clone(). (The Body is never reused: it is the
// backend's.)
func (p *Partition) NewDelivery() *Delivery {
	if len(p.local) == 0 {
		p.freeMu.Lock()
		p.local, p.free = p.free, p.local
		p.freeMu.Unlock()
	}
	if n := len(p.local); n > 0 {
		d := p.local[n-1]
		p.local[n-1] = nil
		p.local = p.local[:n-1]
		return d
	}
	return &Delivery{Message: broker.Message{Headers: make(broker.Headers, 0, 12)}}
}

// maxHeadersKept bounds the capacity of a Headers slice kept for reuse.
const maxHeadersKept = 64

// recycle returns the deliveries of a finished batch to their partition,
// but those whose handler was abandoned (it may still hold its message).
func recycle(p *Partition, ds []*Delivery) {
	if p == nil || len(ds) == 0 {
		return
	}
	for i, d := range ds {
		if d.abandoned.Load() {
			ds[i] = nil
			continue
		}
		h := d.Message.Headers
		if cap(h) > maxHeadersKept {
			h = make(broker.Headers, 0, 12)
		} else {
			clear(h)
			h = h[:0]
		}
		*d = Delivery{Message: broker.Message{Headers: h}}
	}
	p.freeMu.Lock()
	for _, d := range ds {
		if d != nil && len(p.free) < p.keep {
			p.free = append(p.free, d)
		}
	}
	p.freeMu.Unlock()
}

// maxBatchKept is the capacity of the batch slices kept for reuse.
const maxBatchKept = 64

var batchPool = sync.Pool{New: func() any { s := make([]*Delivery, 0, 64); return &s }}

// NewBatch returns an empty slice for a Deliver call, from a pool (Deliver
// takes ownership of the slice).
func NewBatch() []*Delivery { return (*batchPool.Get().(*[]*Delivery))[:0] }

func putBatch(b []*Delivery) {
	if cap(b) > 1024 {
		return
	}
	clear(b[:cap(b)])
	b = b[:0]
	batchPool.Put(&b)
}

// PartitionConfig describes one ordered stream of a backend: a Kafka
// partition claim, a memory partition assignment, an AMQP consume session.
// Set Commit or Ack (or neither, for a stream with nothing to acknowledge).
type PartitionConfig struct {
	// Commit records that every message before position next has
	// finished. The runtime calls it with increasing next, never
	// concurrently for one partition, after batches of finished messages
	// and once more in Close; never after Close returned.
	Commit func(next int64)
	// Ack acknowledges one finished message by itself (AMQP basic.ack).
	// It is called once per message whose handler succeeded, right after,
	// from the worker that ran it, possibly concurrently for one
	// partition; never after Close returned.
	Ack func(pos int64)
}

// Partition is one stream of a Runtime. Deliver hands its messages out;
// Close drains it. Open one with Runtime.Open.
type Partition struct {
	r      *Runtime
	cfg    PartitionConfig
	tr     *tracker
	ctx    context.Context // handlers' ctx: cancelled at the drain deadline
	cancel context.CancelFunc

	// span bounds the messages the tracker keeps (finished ones behind an
	// unfinished one, waiting for the watermark): past it Deliver waits,
	// so a stuck message holds the partition back rather than memory.
	span uint64

	closing chan struct{} // closed by Close: Deliver hands nothing more out
	once    sync.Once
	aborted atomic.Bool // queued messages are not started (drain deadline, failure)

	// Deliveries for reuse: local is the feeding goroutine's, free is
	// where workers return them (guarded by freeMu), at most keep.
	local  []*Delivery
	freeMu sync.Mutex
	free   []*Delivery
	keep   int

	// commitMu serialises Commit calls and guards the fields below.
	commitMu  sync.Mutex
	committed int64 // last next given to Commit; -1 before
	dirty     atomic.Bool
	armed     atomic.Bool // a deferred flush is due
	released  bool        // Close has returned: no more Commit or Ack
}

// Bounds of a partition's span (see Partition.span).
const (
	spanFactor = 64
	minSpan    = 4096
)

// Open starts a partition. Its handlers' ctx carries the values of the
// Subscribe ctx.
func (r *Runtime) Open(cfg PartitionConfig) *Partition {
	ctx, cancel := context.WithCancel(r.hctx)
	p := &Partition{
		r: r, cfg: cfg, tr: newTracker(r.sub.MaxInFlight), span: uint64(max(spanFactor*r.sub.MaxInFlight, minSpan)),
		ctx: ctx, cancel: cancel, closing: make(chan struct{}), committed: -1,
		keep: 2*r.sub.MaxInFlight + 2*maxBatchKept,
	}
	r.mu.Lock()
	r.parts[p] = struct{}{}
	r.mu.Unlock()
	return p
}

// Deliver hands ds out to the workers, in order: ds must follow the
// messages delivered before on this partition, in position order. The
// runtime takes ownership of the slice and of the deliveries. Deliver
// waits while the subscription has MaxInFlight messages in flight; it
// returns how many of ds it handed out, fewer than len(ds) only when the
// partition is closing or the subscription stopping (the rest are not the
// runtime's: the backend leaves them for redelivery).
func (p *Partition) Deliver(ds []*Delivery) int {
	r := p.r
	handed := 0
	for handed < len(ds) {
		if p.isClosing() || !p.tr.waitSpan(p.span, p.closing, r.stopping) {
			return handed
		}
		n := r.acquire(len(ds)-handed, p.closing)
		if n == 0 {
			return handed
		}
		chunk := ds
		if n < len(ds) {
			// Workers own the slices they get: copy the part.
			chunk = append(NewBatch(), ds[handed:handed+n]...)
		}
		p.tr.add(chunk, p)
		p.dispatch(chunk)
		handed += n
	}
	return handed
}

// dispatch queues chunk's deliveries on their workers, one lock and at
// most one wake-up per worker.
func (p *Partition) dispatch(chunk []*Delivery) {
	ws := p.r.workers
	if len(ws) == 1 {
		ws[0].push(chunk)
		return
	}
	if len(ws) > 64 || len(chunk) > 256 {
		for _, d := range chunk {
			ws[p.r.shard(&d.Message)].push1(d)
		}
		putBatch(chunk)
		return
	}
	var to [256]uint8 // the worker of each delivery
	var mask uint64   // the workers with deliveries
	for k, d := range chunk {
		wi := p.r.shard(&d.Message)
		to[k] = uint8(wi)
		mask |= 1 << wi
	}
	for mask != 0 {
		wi := bits.TrailingZeros64(mask)
		mask &^= 1 << wi
		w := ws[wi]
		w.mu.Lock()
		for k, d := range chunk {
			if int(to[k]) == wi {
				w.pending = appendPending(w.pending, d)
			}
		}
		w.wakeLocked()
	}
	putBatch(chunk) // its deliveries are in the workers' queues
}

func (p *Partition) isClosing() bool {
	select {
	case <-p.closing:
		return true
	case <-p.r.stopping:
		return true
	default:
		return false
	}
}

// Abort stops the partition like Stop and drops its messages not started
// yet (they are resolved as not finished), while the handlers running go
// on: for a stream whose acknowledgements can no longer reach the broker,
// such as an AMQP channel lost with its connection. Close still has to be
// called.
func (p *Partition) Abort() {
	p.aborted.Store(true)
	p.Stop()
}

// Closing is closed once Stop or Close has been called.
func (p *Partition) Closing() <-chan struct{} { return p.closing }

// Stop makes Deliver hand nothing more out (a Deliver waiting for room
// returns) without waiting for anything: a revoke decided elsewhere than on
// the goroutine that feeds the partition. Close still has to be called.
func (p *Partition) Stop() { p.once.Do(func() { close(p.closing) }) }

// resolve records the outcome of d (ok: its handler succeeded) once.
func (p *Partition) resolve(d *Delivery, ok bool) {
	if !d.resolved.CompareAndSwap(false, true) {
		return
	}
	if ok && p.cfg.Ack != nil {
		p.commitMu.Lock()
		if !p.released {
			p.cfg.Ack(d.Pos)
		}
		p.commitMu.Unlock()
	}
	if p.tr.finish(d.seq, ok) && p.cfg.Commit != nil {
		p.dirty.Store(true)
		// Workers flush at the end of each batch; a batch held up by a slow
		// handler must not hold back what finished before it.
		if p.armed.CompareAndSwap(false, true) {
			time.AfterFunc(flushDelay, func() {
				p.armed.Store(false)
				p.flush()
			})
		}
	}
	p.r.release(1)
}

// flushDelay bounds how long a moved watermark waits for its Commit.
const flushDelay = 5 * time.Millisecond

// flush calls Commit with the watermark if it moved.
func (p *Partition) flush() {
	if p.cfg.Commit == nil || !p.dirty.Load() {
		return
	}
	p.commitMu.Lock()
	defer p.commitMu.Unlock()
	p.dirty.Store(false)
	if p.released {
		return
	}
	if next := p.tr.watermark(); next > p.committed {
		p.committed = next
		p.cfg.Commit(next)
	}
}

// Released is what Close reports of a partition.
type Released struct {
	// Committed is the last position given to Commit (the watermark), -1
	// if none.
	Committed int64
	// LastHandedOut is the position of the last message handed out, -1 if
	// none: a later owner of the partition may mark messages up to it
	// Redelivered.
	LastHandedOut int64
	// Abandoned counts handlers that ignored their ctx past the grace.
	Abandoned int
}

// Close stops the partition: Deliver hands nothing more out; the messages
// handed out finish (within drain; then the messages not started are
// dropped and the running handlers' ctx is cancelled; after the runtime's
// Grace the handlers still running are abandoned and their workers
// replaced); the finished prefix is committed; Close returns. Messages not
// finished stay unacknowledged, for redelivery. Close is idempotent; call
// it from the backend, not from a handler.
func (p *Partition) Close(drain time.Duration) Released {
	p.Stop()
	r := p.r
	rel := Released{}
	if !p.tr.waitIdle(drain) {
		p.aborted.Store(true)
		p.cancel()
		r.log.Warn("dispatch: drain timeout reached; cancelling the handlers in flight",
			"topic", r.sub.Topic, "group", r.sub.Group, "drain_timeout", drain)
		if !p.tr.waitIdle(r.grace) {
			rel.Abandoned = r.abandon(p)
		}
	}
	p.cancel()
	p.commitMu.Lock()
	if p.cfg.Commit != nil {
		if next := p.tr.watermark(); next > p.committed {
			p.committed = next
			p.cfg.Commit(next)
		}
	}
	p.released = true
	rel.Committed = p.committed
	p.commitMu.Unlock()
	rel.LastHandedOut = p.tr.lastPos()
	r.mu.Lock()
	delete(r.parts, p)
	r.mu.Unlock()
	return rel
}

// abandon gives up on p's handlers still running past the grace: their
// messages are resolved as not finished (left for redelivery), their
// workers replaced by fresh goroutines that carry on with the rest of
// their batches. It returns how many were abandoned.
func (r *Runtime) abandon(p *Partition) int {
	n := 0
	for _, w := range r.workers {
		if d := w.abandonIf(p); d != nil {
			n++
			r.log.Error("dispatch: a handler ignores its ctx; abandoning it, its message left for redelivery",
				"topic", d.Message.Topic, "group", r.sub.Group, "partition", d.Message.Delivery.Partition,
				"offset", d.Message.Delivery.Offset, "key", d.Message.Key, "error", errAbandoned)
		}
	}
	// Whatever else of p is unresolved was queued behind an abandoned
	// handler on a replaced worker, which skips it (p is aborted).
	return n
}
