package dispatch

import (
	"sync"
	"time"
)

// slot states of a tracker.
const (
	slotPending   uint8 = iota // handed out, not finished
	slotDone                   // the handler succeeded: committable
	slotAbandoned              // not finished and never will be here
)

type slot struct {
	pos   int64
	at    int64 // receive time, Unix ns
	state uint8
}

// tracker follows a partition's messages from hand-out to completion and
// computes the watermark: every position below it finished. Messages
// finish out of order when a partition's keys are spread over workers;
// the watermark only moves over a contiguous finished prefix, so it never
// passes an unfinished message. An abandoned message stops it for good.
type tracker struct {
	mu         sync.Mutex
	ring       []slot // outstanding slots, seq % len(ring)
	head, tail uint64 // slots [head, tail) are outstanding, in order
	last       int64  // position of the latest slot added; -1 before the first
	next       int64  // watermark; -1 before the first message
	blocked    bool   // the head slot was abandoned: next cannot move
	unresolved int
	idle       chan struct{} // closed when unresolved drops to 0 (made by waitIdle)
	moved      chan struct{} // closed when head moves (made by waitSpan)
}

func newTracker(capacity int) *tracker {
	n := 16
	for n < capacity {
		n <<= 1
	}
	return &tracker{ring: make([]slot, n), last: -1, next: -1}
}

// add records ds as handed out, in order, and gives each its sequence.
func (t *tracker) add(ds []*Delivery, p *Partition) {
	t.mu.Lock()
	for _, d := range ds {
		if t.tail-t.head == uint64(len(t.ring)) {
			t.grow()
		}
		d.p, d.seq = p, t.tail
		t.ring[t.tail%uint64(len(t.ring))] = slot{pos: d.Pos, at: d.Message.Delivery.ReceivedAt.UnixNano(), state: slotPending}
		t.tail++
		t.last = d.Pos
		if t.next < 0 {
			t.next = d.Pos
		}
	}
	t.unresolved += len(ds)
	t.mu.Unlock()
}

func (t *tracker) grow() {
	ring := make([]slot, 2*len(t.ring))
	for s := t.head; s < t.tail; s++ {
		ring[s%uint64(len(ring))] = t.ring[s%uint64(len(t.ring))]
	}
	t.ring = ring
}

// finish resolves slot seq as done (ok) or abandoned and reports whether
// the watermark moved.
func (t *tracker) finish(seq uint64, ok bool) bool {
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
			if t.moved != nil {
				close(t.moved)
				t.moved = nil
			}
			if t.head < t.tail {
				t.next = t.ring[t.head%uint64(len(t.ring))].pos
			} else {
				t.next = t.last + 1
			}
		}
	}
	if t.unresolved == 0 && t.idle != nil {
		close(t.idle)
		t.idle = nil
	}
	return moved
}

// watermark returns the position below which everything finished; -1
// before the first message.
func (t *tracker) watermark() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.next
}

// lastPos returns the position of the last message handed out, -1 if none.
func (t *tracker) lastPos() int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.last
}

// outstanding returns how many messages are unresolved and when the
// oldest of them was received.
func (t *tracker) outstanding() (int, time.Time) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.unresolved == 0 {
		return 0, time.Time{}
	}
	var oldest int64
	for s := t.head; s < t.tail; s++ {
		sl := t.ring[s%uint64(len(t.ring))]
		if sl.state == slotPending && (oldest == 0 || sl.at < oldest) {
			oldest = sl.at
		}
	}
	return t.unresolved, time.Unix(0, oldest)
}

// waitIdle waits until every message handed out is resolved, at most d;
// it reports whether they are.
func (t *tracker) waitIdle(d time.Duration) bool {
	t.mu.Lock()
	if t.unresolved == 0 {
		t.mu.Unlock()
		return true
	}
	if t.idle == nil {
		t.idle = make(chan struct{})
	}
	idle := t.idle
	t.mu.Unlock()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-idle:
		return true
	case <-timer.C:
		return false
	}
}

// waitSpan waits while the tracker holds limit slots or more (messages
// finished behind an unfinished one are kept until it finishes), until
// stop is closed; it reports whether there is room.
func (t *tracker) waitSpan(limit uint64, stop, stopping <-chan struct{}) bool {
	for {
		t.mu.Lock()
		if t.tail-t.head < limit || t.blocked {
			t.mu.Unlock()
			return true
		}
		if t.moved == nil {
			t.moved = make(chan struct{})
		}
		moved := t.moved
		t.mu.Unlock()
		select {
		case <-moved:
		case <-stop:
			return false
		case <-stopping:
			return false
		}
	}
}
