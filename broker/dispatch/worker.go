package dispatch

import (
	"runtime"
	"sync"
	"sync/atomic"
)

// A worker's state packs the serving goroutine's generation (15 bits), a
// frozen bit, the sequence number of its batch (16 bits) and the index of
// the item it runs (32 bits; noItem between batches).
const (
	noItem    = 1<<32 - 1
	frozenBit = 1 << 48
)

func pack(gen, bseq uint16, idx uint32) uint64 {
	return uint64(gen&0x7fff)<<49 | uint64(bseq)<<32 | uint64(idx)
}

func unpack(s uint64) (gen, bseq uint16, idx uint32, frozen bool) {
	return uint16(s>>49) & 0x7fff, uint16(s >> 32), uint32(s), s&frozenBit != 0
}

// worker is one handler goroutine slot: a queue of batches and the
// goroutine currently serving it. When a handler overruns its grace the
// goroutine is abandoned and a fresh one takes over the queue and the
// rest of the batch (abandonIf).
//
// The serving goroutine claims each item with a CAS on state. abandonIf
// first freezes the state (the goroutine's CASes fail, and it waits while
// the bit is set), looks at the item, and then either gives the state back
// or bumps the generation: an abandoned goroutine claims nothing more. Items
// are recycled only once their goroutine has finished the whole batch, so
// the item a frozen state names is never recycled under abandonIf.
type worker struct {
	r *Runtime

	// The queue: deliveries not taken yet, in order. The goroutine takes
	// them all at once as its next batch; producers wake it (signal) only
	// when it is idle.
	mu      sync.Mutex
	pending []*Delivery
	idle    bool
	closed  bool
	signal  chan struct{} // capacity 1

	state atomic.Uint64
	// batches holds the current batch at its sequence number's parity:
	// the next one goes to the other slot, so a batch read with the state
	// it belongs to stays valid while the state is frozen.
	batches [2]atomic.Pointer[[]*Delivery]
	abandon sync.Mutex // serialises abandonIf

	// wg counts the goroutines Finish waits for: an abandoned goroutine's
	// count is taken off by abandonIf.
	wg sync.WaitGroup
}

// start launches a goroutine of the current generation, which first runs
// rest (the remainder of an abandoned goroutine's batch).
func (w *worker) start(rest []*Delivery) {
	gen, _, _, _ := unpack(w.state.Load())
	w.wg.Add(1)
	go w.run(gen, rest)
}

// wait returns when the queue is closed and drained by goroutines that
// were not abandoned.
func (w *worker) wait() { w.wg.Wait() }

func (w *worker) run(gen uint16, rest []*Delivery) {
	if len(rest) > 0 && !w.serve(gen, rest, false) {
		return // abandoned: its count is off wg already
	}
	for {
		batch, ok := w.take()
		if !ok {
			break
		}
		if !w.serve(gen, batch, true) {
			return
		}
	}
	w.wg.Done()
}

// push queues ds (taking ownership of the slice).
func (w *worker) push(ds []*Delivery) {
	w.mu.Lock()
	if len(w.pending) == 0 {
		if w.pending != nil {
			putBatch(w.pending)
		}
		w.pending = ds
	} else {
		w.pending = append(w.pending, ds...)
		defer putBatch(ds)
	}
	w.wakeLocked()
}

// push1 queues one delivery.
func (w *worker) push1(d *Delivery) {
	w.mu.Lock()
	w.pending = appendPending(w.pending, d)
	w.wakeLocked()
}

func appendPending(p []*Delivery, d *Delivery) []*Delivery {
	if p == nil {
		p = NewBatch()
	}
	return append(p, d)
}

// wakeLocked unlocks w.mu and wakes the goroutine if it waits.
func (w *worker) wakeLocked() {
	wake := w.idle
	w.idle = false
	w.mu.Unlock()
	if wake {
		select {
		case w.signal <- struct{}{}:
		default:
		}
	}
}

// take returns the queued deliveries, waiting for some; false once the
// queue is closed and empty.
func (w *worker) take() ([]*Delivery, bool) {
	w.mu.Lock()
	for len(w.pending) == 0 {
		if w.closed {
			w.mu.Unlock()
			return nil, false
		}
		w.idle = true
		w.mu.Unlock()
		<-w.signal
		w.mu.Lock()
	}
	b := w.pending
	w.pending = nil
	w.mu.Unlock()
	return b, true
}

// close ends the queue: the goroutine serves what is queued, then stops.
func (w *worker) close() {
	w.mu.Lock()
	w.closed = true
	w.wakeLocked()
}

// advance moves the state from prev to next for this goroutine, waiting
// while abandonIf has it frozen; false when the goroutine was abandoned.
func (w *worker) advance(gen uint16, prev, next uint64) bool {
	for !w.state.CompareAndSwap(prev, next) {
		s := w.state.Load()
		if g, _, _, frozen := unpack(s); g != gen {
			return false
		} else if frozen {
			runtime.Gosched()
			continue
		}
		if s != prev {
			return false // cannot happen: only abandonIf changes our state
		}
	}
	return true
}

// serve runs batch and reports false when this goroutine was abandoned.
// With own set the batch slice goes back to the pool afterwards.
func (w *worker) serve(gen uint16, batch []*Delivery, own bool) bool {
	prev := w.state.Load()
	g, bseq, _, _ := unpack(prev)
	if g != gen {
		return false
	}
	bseq++
	w.batches[bseq&1].Store(&batch)
	var part *Partition // a batch comes from one Deliver call: one partition
	if len(batch) > 0 {
		part = batch[0].p
	}
	for i, d := range batch {
		cur := pack(gen, bseq, uint32(i))
		if !w.advance(gen, prev, cur) {
			return false // abandoned: the new goroutine runs the rest
		}
		prev = cur
		w.handle(d)
	}
	if !w.advance(gen, prev, pack(gen, bseq, noItem)) {
		return false
	}
	if part != nil {
		part.flush()
	}
	if own {
		// Past the last item: nothing of the batch can be abandoned now.
		recycle(part, batch)
		putBatch(batch)
	}
	return true
}

// handle runs the handler for d and resolves it.
func (w *worker) handle(d *Delivery) {
	p := d.p
	if p.aborted.Load() || d.resolved.Load() {
		p.resolve(d, false)
		return
	}
	err := w.r.handler(p.ctx, &d.Message)
	if d.abandoned.Load() {
		// Given up on past the grace: the message was resolved then; this
		// late outcome is not recorded.
		w.r.mu.Lock()
		delete(w.r.abandoned, d)
		w.r.mu.Unlock()
		return
	}
	switch {
	case err == nil:
		p.resolve(d, true)
	case p.ctx.Err() != nil:
		// Cut short by the drain deadline: not the handler's failure. The
		// message stays unacknowledged, for redelivery.
		w.r.log.Warn("dispatch: handler cut short by the drain deadline; message left for redelivery",
			"topic", d.Message.Topic, "group", w.r.sub.Group, "partition", d.Message.Delivery.Partition,
			"offset", d.Message.Delivery.Offset, "error", err)
		p.resolve(d, false)
	default:
		w.r.handlerFailed(d, err)
		p.resolve(d, false)
	}
}

// abandonIf abandons the goroutine serving w if it is running a message
// of p: the message is resolved as not finished (left for redelivery),
// the generation bumped (the old goroutine claims nothing more, and its
// late outcome is not recorded), and a fresh goroutine takes over the rest
// of the batch and the queue. It returns the abandoned message, or nil.
func (w *worker) abandonIf(p *Partition) *Delivery {
	w.abandon.Lock()
	defer w.abandon.Unlock()
	for {
		s := w.state.Load()
		gen, bseq, idx, _ := unpack(s)
		if idx == noItem {
			return nil
		}
		if !w.state.CompareAndSwap(s, s|frozenBit) {
			continue // it moved on meanwhile: look again
		}
		batch := *w.batches[bseq&1].Load()
		d := batch[idx]
		if d.p != p || d.resolved.Load() {
			w.state.Store(s) // not ours (or just finished): let it go on
			return nil
		}
		d.abandoned.Store(true)
		p.r.mu.Lock()
		p.r.abandoned[d] = struct{}{}
		p.r.mu.Unlock()
		p.resolve(d, false)
		w.state.Store(pack(gen+1, bseq, noItem))
		w.start(batch[idx+1:])
		w.wg.Done() // the old goroutine's: Finish does not wait for it
		return d
	}
}
