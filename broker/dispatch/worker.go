package dispatch

import (
	"sync"
	"sync/atomic"
)

// noItem in a worker's state means it is between batches.
const noItem = 1<<32 - 1

// state of a worker: the serving goroutine's generation, the sequence
// number of its batch and the index of the item it runs.
func pack(gen, bseq uint16, idx uint32) uint64 {
	return uint64(gen)<<48 | uint64(bseq)<<32 | uint64(idx)
}

func unpack(s uint64) (gen, bseq uint16, idx uint32) {
	return uint16(s >> 48), uint16(s >> 32), uint32(s)
}

// worker is one handler goroutine slot: a queue of batches and the
// goroutine currently serving it. When a handler overruns its grace the
// goroutine is abandoned and a fresh one takes over the queue and the
// rest of the batch (abandonIf).
type worker struct {
	r *Runtime
	q chan []*Delivery

	// state packs the serving goroutine's generation, its batch's
	// sequence number and the index of the item it runs (noItem between
	// batches). A goroutine claims each item with a CAS on it, so once
	// abandonIf bumped the generation the old goroutine claims nothing
	// more. batches holds the current batch at its sequence number's
	// parity: the next one goes to the other slot, so a batch read with
	// the state it belongs to stays valid while the state is unchanged.
	state   atomic.Uint64
	batches [2]atomic.Pointer[[]*Delivery]

	// wg counts the goroutines Finish waits for: an abandoned goroutine's
	// count is taken off by abandonIf.
	wg sync.WaitGroup
}

// start launches a goroutine of the current generation, which first runs
// rest (the remainder of an abandoned goroutine's batch).
func (w *worker) start(rest []*Delivery) {
	gen, _, _ := unpack(w.state.Load())
	w.wg.Add(1)
	go w.run(gen, rest)
}

// wait returns when the queue is closed and drained by goroutines that
// were not abandoned.
func (w *worker) wait() { w.wg.Wait() }

func (w *worker) run(gen uint16, rest []*Delivery) {
	if len(rest) > 0 && !w.serve(gen, rest) {
		return // abandoned: its count is off wg already
	}
	for batch := range w.q {
		if !w.serve(gen, batch) {
			return
		}
	}
	w.wg.Done()
}

// serve runs batch and reports false when this goroutine was abandoned.
func (w *worker) serve(gen uint16, batch []*Delivery) bool {
	s := w.state.Load()
	g, bseq, _ := unpack(s)
	if g != gen {
		return false
	}
	bseq++
	w.batches[bseq&1].Store(&batch)
	prev := s
	for i, d := range batch {
		cur := pack(gen, bseq, uint32(i))
		if !w.state.CompareAndSwap(prev, cur) {
			return false // abandoned: the new goroutine runs the rest
		}
		prev = cur
		w.handle(d)
	}
	if !w.state.CompareAndSwap(prev, pack(gen, bseq, noItem)) {
		return false
	}
	flushAll(batch)
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

// flushAll commits the partitions of a finished batch.
func flushAll(batch []*Delivery) {
	var last *Partition
	for _, d := range batch {
		if d.p != last {
			last = d.p
			last.flush()
		}
	}
}

// abandonIf abandons the goroutine serving w if it is running a message
// of p: the message is resolved as not finished (left for redelivery),
// the generation bumped (the old goroutine claims nothing more, and its
// late outcome is not recorded), and a fresh goroutine takes over the rest
// of the batch and the queue. It returns the abandoned message, or nil.
func (w *worker) abandonIf(p *Partition) *Delivery {
	for {
		s := w.state.Load()
		gen, bseq, idx := unpack(s)
		if idx == noItem {
			return nil
		}
		bp := w.batches[bseq&1].Load()
		if bp == nil || int(idx) >= len(*bp) {
			continue // read before the goroutine stored it: look again
		}
		batch := *bp
		d := batch[idx]
		if d.p != p || d.resolved.Load() {
			if w.state.Load() == s {
				return nil
			}
			continue
		}
		if !w.state.CompareAndSwap(s, pack(gen+1, bseq, noItem)) {
			continue // it moved on meanwhile: look again
		}
		d.abandoned.Store(true)
		p.r.mu.Lock()
		p.r.abandoned[d] = struct{}{}
		p.r.mu.Unlock()
		p.resolve(d, false)
		w.start(batch[idx+1:])
		w.wg.Done() // the old goroutine's: Finish does not wait for it
		return d
	}
}
