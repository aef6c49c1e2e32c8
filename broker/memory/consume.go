package memory

import (
	"context"
	"maps"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

// assignment is a partition a member owns for its group: where it reads,
// and the bookkeeping that turns finished messages into a committed offset.
// It belongs to the member's run loop, except ctx, which workers read.
type assignment struct {
	cur  *cursor
	part *partition
	// ctx is the handlers' ctx for this partition. It is cancelled when a
	// drain bound expires (the member stops, or the partition was revoked
	// and the handlers overran DrainTimeout) and on release.
	ctx    context.Context
	cancel context.CancelFunc

	pos            int64 // next offset to read
	committed      int64 // finished prefix end
	redeliverBelow int64 // offsets below were handed out before this ownership
	started        int64 // offsets below were handed to a handler
	inflight       int   // sent to workers, result not back yet
	revoking       bool  // no longer ours: hand nothing out, release when idle
	dirty          bool  // committed advanced and is not written yet
	finished       window
}

// item is a message sent to a worker; result is what comes back.
type item struct {
	a    *assignment
	msg  *broker.Message
	off  int64
	slot int32 // in the consumer's in-flight set
}

type result struct {
	a       *assignment
	msg     *broker.Message
	off     int64
	slot    int32
	err     error
	started bool
	skipped bool
}

// run is the member's loop: reconcile ownership when poked, hand messages
// out while not stopping, wait for wakes and results, and stop once nothing
// is in flight.
func (c *consumer) run() {
	defer c.finish()
	for {
		if c.results != nil {
			c.drainResults()
		}
		if c.attention.Load() {
			c.attention.Store(false)
			c.reconcile()
		}
		if c.stopping.Load() {
			if c.inflight == 0 {
				return
			}
		} else if c.poll() {
			continue
		}
		c.wait()
	}
}

func (c *consumer) poll() bool {
	if c.results == nil {
		return c.pollInline()
	}
	return c.pollWorkers()
}

// wait blocks until a publisher or a poke wakes the loop, or a result comes
// back.
func (c *consumer) wait() {
	if c.results == nil {
		<-c.wakeCh
		return
	}
	select {
	case r := <-c.results:
		c.onResult(r)
		c.drainResults()
	case <-c.wakeCh:
	}
}

// usable reports whether a's messages may be handed out.
func usable(a *assignment) bool { return !a.revoking && a.ctx.Err() == nil }

// pollInline (Concurrency 1) takes up to MaxInFlight messages of each owned
// partition in one lock and calls the handler on the loop itself, checking
// between messages whether a stop or a rebalance wants the loop; messages
// of the batch not handed out yet are read again later. It commits after
// each batch and reports whether it found messages.
func (c *consumer) pollInline() bool {
	got := false
	n := len(c.assigns)
	for k := 0; k < n && !c.attention.Load(); k++ {
		a := c.assigns[(c.rr+k)%n]
		if !usable(a) {
			continue
		}
		batch := c.fetch(a, c.sub.MaxInFlight)
		if len(batch) == 0 {
			continue
		}
		got = true
		at := time.Now()
		first := a.pos
		for i := range batch {
			if c.attention.Load() {
				break
			}
			off := first + int64(i)
			m := c.message(a, &batch[i], off, at)
			a.started = off + 1
			slot := c.held.Add(at)
			err := c.handler(a.ctx, m)
			c.held.Done(slot)
			if err != nil {
				c.handlerFailed(a, m, off, err)
				break
			}
			a.pos = off + 1
		}
		clear(batch)
		if a.pos > a.committed {
			a.committed = a.pos
			a.part.commit(a.cur, a.pos)
		}
	}
	c.rr++
	return got
}

// pollWorkers (Concurrency > 1) hands messages to the workers, sharded by
// key, while fewer than MaxInFlight are in flight.
func (c *consumer) pollWorkers() bool {
	got := false
	n := len(c.assigns)
	nw := uint32(len(c.workers))
	for k := 0; k < n; k++ {
		room := c.sub.MaxInFlight - c.inflight
		if room <= 0 {
			break
		}
		a := c.assigns[(c.rr+k)%n]
		if !usable(a) {
			continue
		}
		batch := c.fetch(a, room)
		if len(batch) == 0 {
			continue
		}
		got = true
		at := time.Now()
		for i := range batch {
			e := &batch[i]
			off := a.pos + int64(i)
			var shard uint32
			if e.key == "" {
				shard = uint32(off) % nw
			} else {
				shard = mix(e.hash) % nw
			}
			a.finished.add()
			c.workers[shard] <- item{a: a, msg: c.message(a, e, off, at), off: off, slot: c.held.Add(at)}
		}
		a.pos += int64(len(batch))
		a.inflight += len(batch)
		c.inflight += len(batch)
		clear(batch)
	}
	c.rr++
	return got
}

// work is a handler goroutine. Its queue and the results channel hold
// MaxInFlight items, so neither send blocks. After a handler failure that
// stops the consumer, the worker hands nothing more out: the messages
// queued behind the failed one (its keys among them) stay unacknowledged,
// while the other workers drain their queues as on Close.
func (c *consumer) work(q chan item) {
	defer c.workerWG.Done()
	failed := false
	for it := range q {
		r := result{a: it.a, msg: it.msg, off: it.off, slot: it.slot}
		if failed || it.a.ctx.Err() != nil {
			r.skipped = true
		} else {
			r.started = true
			r.err = c.handler(it.a.ctx, it.msg)
			failed = r.err != nil && it.a.ctx.Err() == nil
		}
		c.results <- r
	}
}

// drainResults takes every result waiting, then commits.
func (c *consumer) drainResults() {
	for {
		select {
		case r := <-c.results:
			c.onResult(r)
		default:
			c.commitPending()
			return
		}
	}
}

func (c *consumer) onResult(r result) {
	a := r.a
	a.inflight--
	c.inflight--
	c.held.Done(r.slot)
	if r.started && r.off >= a.started {
		a.started = r.off + 1
	}
	switch {
	case r.skipped:
	case r.err != nil:
		c.handlerFailed(a, r.msg, r.off, r.err)
	default:
		if a.finished.finish(r.off) {
			a.committed = a.finished.base
			if !a.dirty {
				a.dirty = true
				c.needCommit = append(c.needCommit, a)
			}
		}
	}
	if a.inflight == 0 && !usable(a) {
		c.attention.Store(true) // reconcile can release it now
	}
}

func (c *consumer) commitPending() {
	for _, a := range c.needCommit {
		if a.dirty {
			a.dirty = false
			a.part.commit(a.cur, a.committed)
		}
	}
	clear(c.needCommit)
	c.needCommit = c.needCommit[:0]
}

// handlerFailed handles an error from the wrapped handler: the message is
// not committed. When a drain bound cancelled the handler's ctx, that is
// not the handler's failure: the message is left for redelivery. Otherwise
// the consumer stops with a *broker.HandlerError.
func (c *consumer) handlerFailed(a *assignment, m *broker.Message, off int64, err error) {
	c.attention.Store(true)
	if a.ctx.Err() != nil {
		c.b.cfg.logger.Warn("memory: handler cut short by the drain bound; message left for redelivery",
			"topic", c.t.name, "group", c.g.name, "partition", a.part.id, "offset", off, "error", err)
		return
	}
	c.fail(&broker.HandlerError{
		Topic: c.t.name, Partition: a.part.id, Offset: off, Key: m.Key,
		Attempts: max(m.Delivery.Attempt, 1), Err: err,
	})
}

// fetch copies up to limit entries of a's partition from a.pos into the
// reusable batch, in one lock. The group's committed offset keeps the
// partition from trimming anything at or after a.pos.
func (c *consumer) fetch(a *assignment, limit int) []entry {
	p := a.part
	p.mu.Lock()
	c.batch = p.read(a.pos, limit, c.batch[:0])
	p.mu.Unlock()
	return c.batch
}

// message builds the group delivery of entry e at offset off.
func (c *consumer) message(a *assignment, e *entry, off int64, at time.Time) *broker.Message {
	m := e.message(c.t.name, a.part.id, off, at)
	m.Delivery.Redelivered = off < a.redeliverBelow
	m.Delivery.Group = c.g.name
	return m
}

// message converts the entry at offset off of a partition into a fresh
// message with its own Headers map: Delivery has the partition, the offset,
// Attempt 1 and ReceivedAt at, and no group.
func (e *entry) message(topic string, partition int32, off int64, at time.Time) *broker.Message {
	h := maps.Clone(e.headers)
	if h == nil {
		h = make(map[string]string, 1)
	}
	return &broker.Message{
		Topic: topic, Key: e.key, Headers: h, Body: e.body,
		Delivery: broker.Delivery{Partition: partition, Offset: off, Attempt: 1, ReceivedAt: at},
	}
}

// window records which handed-out offsets of a partition finished, from the
// committed offset (base) on, so the committed offset advances over the
// contiguous finished prefix only.
type window struct {
	base int64
	done []bool // done[head+i] is offset base+i
	head int
}

func (w *window) reset(base int64) { w.base, w.done, w.head = base, w.done[:0], 0 }

// add records the next offset as handed out.
func (w *window) add() { w.done = append(w.done, false) }

// finish marks off finished and reports whether the prefix (base) moved.
func (w *window) finish(off int64) bool {
	w.done[w.head+int(off-w.base)] = true
	if off != w.base {
		return false
	}
	for w.head < len(w.done) && w.done[w.head] {
		w.head++
		w.base++
	}
	switch {
	case w.head == len(w.done):
		w.done, w.head = w.done[:0], 0
	case w.head >= 1024 && 2*w.head >= len(w.done):
		n := copy(w.done, w.done[w.head:])
		w.done, w.head = w.done[:n], 0
	}
	return true
}
