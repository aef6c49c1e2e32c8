package kafkabus

import (
	"sync"
	"sync/atomic"
)

// slot states of a tracker.
const (
	slotPending   uint8 = iota // handed out, not finished
	slotDone                   // the handler returned nil: committable
	slotAbandoned              // not finished and never will be in this claim
)

type slot struct {
	offset int64
	state  uint8
}

// tracker follows the messages of one partition claim from hand-out to
// completion and computes the offset that is safe to commit: every offset
// below it is finished. Messages finish out of order when a partition's
// keys are spread over several workers; the committable offset only moves
// over a contiguous finished prefix, so it never passes an unfinished
// message. An abandoned message (revoked or failed) stops it for good.
type tracker struct {
	stopped atomic.Bool // no more hand-outs: idle closes when all are resolved

	mu         sync.Mutex
	ring       []slot // outstanding slots, seq % len(ring)
	head, tail uint64 // slots [head, tail) are outstanding, in offset order
	last       int64  // offset of the latest slot added; -1 before the first
	next       int64  // committable offset; -1 before the first message
	blocked    bool   // the head slot was abandoned: next cannot move
	unresolved int    // slots neither done nor abandoned
	idle       chan struct{}
	idleClosed bool
}

func newTracker(capacity int) *tracker {
	n := 16
	for n < capacity {
		n <<= 1
	}
	return &tracker{ring: make([]slot, n), last: -1, next: -1, idle: make(chan struct{})}
}

// add records offset as handed out and returns its sequence number.
// Offsets must be added in increasing order.
func (t *tracker) add(offset int64) uint64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.tail-t.head == uint64(len(t.ring)) {
		t.grow()
	}
	seq := t.tail
	t.ring[seq%uint64(len(t.ring))] = slot{offset: offset, state: slotPending}
	t.tail++
	t.last = offset
	t.unresolved++
	if t.next < 0 {
		t.next = offset
	}
	return seq
}

func (t *tracker) grow() {
	ring := make([]slot, 2*len(t.ring))
	for s := t.head; s < t.tail; s++ {
		ring[s%uint64(len(ring))] = t.ring[s%uint64(len(t.ring))]
	}
	t.ring = ring
}

// finish resolves slot seq as done (ok) or abandoned, and returns the
// committable offset and whether it moved.
func (t *tracker) finish(seq uint64, ok bool) (int64, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := &t.ring[seq%uint64(len(t.ring))]
	if ok {
		s.state = slotDone
	} else {
		s.state = slotAbandoned
	}
	t.unresolved--
	moved := false
	if seq == t.head && !t.blocked {
		for t.head < t.tail {
			h := t.ring[t.head%uint64(len(t.ring))]
			if h.state == slotAbandoned {
				t.blocked = true
				break
			}
			if h.state != slotDone {
				break
			}
			t.head++
			moved = true
		}
		if moved {
			if t.head < t.tail {
				t.next = t.ring[t.head%uint64(len(t.ring))].offset
			} else {
				t.next = t.last + 1
			}
		}
	}
	if t.unresolved == 0 && t.stopped.Load() && !t.idleClosed {
		t.idleClosed = true
		close(t.idle)
	}
	return t.next, moved
}

// stop ends hand-outs: messages not yet started will be abandoned. The
// channel idle is closed once every handed-out message is resolved.
func (t *tracker) stop() {
	t.stopped.Store(true)
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.unresolved == 0 && !t.idleClosed {
		t.idleClosed = true
		close(t.idle)
	}
}

// committable returns the offset that is safe to commit (-1 before the
// first message) and the offset of the last message handed out.
func (t *tracker) committable() (next, last int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.next, t.last
}
