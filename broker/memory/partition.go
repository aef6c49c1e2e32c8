package memory

import (
	"sync"
	"sync/atomic"

	"github.com/cosmic-horizons/events/broker"
)

// entry is one stored message. The headers map is a private copy made at
// publish time and never modified afterwards; the body is the publisher's
// slice, which nobody modifies. Entries are copied by value out of the log,
// so readers need no lock once they hold one.
type entry struct {
	key     string
	headers broker.Headers
	body    []byte
}

// partition is an append-only log held in a ring buffer that grows up to
// max entries. Offsets start at 0 and never repeat.
type partition struct {
	id int32

	mu      sync.Mutex
	ring    []entry
	head    int   // ring index of the oldest retained entry
	n       int   // retained entries
	start   int64 // offset of the oldest retained entry
	max     int   // capacity bound (BufferSize)
	cursors []*cursor
	durable int // cursors of durable groups
	// room, when not nil, is closed when entries are trimmed; a publisher
	// waiting for room creates it.
	room chan struct{}
}

func newPartition(id int32, max int) *partition {
	return &partition{id: id, max: max}
}

// end is the offset the next message gets (the high-water mark).
func (p *partition) end() int64 { return p.start + int64(p.n) }

// push appends e. The caller holds mu and has made room.
func (p *partition) push(e entry) {
	if p.n == len(p.ring) {
		p.grow()
	}
	i := p.head + p.n
	if i >= len(p.ring) {
		i -= len(p.ring)
	}
	p.ring[i] = e
	p.n++
}

func (p *partition) grow() {
	size := min(max(2*len(p.ring), 64), p.max)
	r := make([]entry, size)
	k := copy(r, p.ring[p.head:])
	copy(r[k:], p.ring[:p.head])
	p.ring, p.head = r, 0
}

// makeRoom reports whether one more entry fits, trimming what no group
// needs. Without durable groups the oldest entry goes if no ephemeral
// subscription still needs it (retention); with durable groups, entries
// every group has committed are already gone. The caller holds mu.
func (p *partition) makeRoom() bool {
	if p.n < p.max {
		return true
	}
	if p.durable == 0 {
		p.trimTo(min(p.low(), p.start+1))
	}
	return p.n < p.max
}

// trimCommitted drops what every group has committed, when some durable
// group is registered (while only ephemeral subscriptions or none read the
// partition, it keeps its newest entries for groups to come). The caller
// holds mu.
func (p *partition) trimCommitted() {
	if p.durable > 0 {
		p.trimTo(p.low())
	}
}

// low is the smallest committed offset over the registered groups, or the
// end when there are none. The caller holds mu.
func (p *partition) low() int64 {
	low := p.end()
	for _, c := range p.cursors {
		low = min(low, c.committed)
	}
	return low
}

// trimTo drops the entries before off and wakes waiting publishers. The
// caller holds mu.
func (p *partition) trimTo(off int64) {
	freed := false
	for p.start < off && p.n > 0 {
		p.ring[p.head] = entry{}
		p.head++
		if p.head == len(p.ring) {
			p.head = 0
		}
		p.n--
		p.start++
		freed = true
	}
	if freed {
		p.wakePublishers()
	}
}

// wakePublishers wakes every publisher waiting for room. The caller holds mu.
func (p *partition) wakePublishers() {
	if p.room != nil {
		close(p.room)
		p.room = nil
	}
}

// roomChan returns a channel closed when room may have appeared. The caller
// holds mu.
func (p *partition) roomChan() <-chan struct{} {
	if p.room == nil {
		p.room = make(chan struct{})
	}
	return p.room
}

// read appends to dst up to limit entries from offset from on, and returns
// dst. The caller holds mu and guarantees from >= start.
func (p *partition) read(from int64, limit int, dst []entry) []entry {
	n := int(min(int64(limit), p.end()-from))
	if n <= 0 {
		return dst
	}
	i := p.head + int(from-p.start)
	if i >= len(p.ring) {
		i -= len(p.ring)
	}
	k := min(n, len(p.ring)-i)
	dst = append(dst, p.ring[i:i+k]...)
	if k < n {
		dst = append(dst, p.ring[:n-k]...)
	}
	return dst
}

// notify wakes the readers of this partition in every group. The caller
// holds mu (so the cursor list is stable).
func (p *partition) notify() {
	for _, c := range p.cursors {
		if a := c.active.Load(); a != nil {
			a.wake()
		}
	}
}

// register adds a group's cursor at the oldest retained message or at the
// end, then trims what every group has now passed.
func (p *partition) register(newest, durable bool) *cursor {
	p.mu.Lock()
	defer p.mu.Unlock()
	off := p.start
	if newest {
		off = p.end()
	}
	c := &cursor{part: p, committed: off, delivered: off, durable: durable}
	p.cursors = append(p.cursors, c)
	if durable {
		p.durable++
	}
	p.trimCommitted()
	return c
}

// unregister removes a group's cursor (an ephemeral subscription ended),
// releasing what only it held.
func (p *partition) unregister(c *cursor) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, x := range p.cursors {
		if x == c {
			p.cursors = append(p.cursors[:i], p.cursors[i+1:]...)
			break
		}
	}
	if c.durable {
		p.durable--
	}
	p.trimCommitted()
	p.wakePublishers() // they may drop the oldest now
}

// commit moves a group's committed offset forward to off and trims what
// every group has passed.
func (p *partition) commit(c *cursor, off int64) {
	p.mu.Lock()
	if off > c.committed {
		c.committed = off
		switch {
		case p.durable == 0:
			if p.n == p.max {
				p.wakePublishers() // waiting for this ephemeral subscription
			}
		case len(p.cursors) == 1:
			p.trimTo(off)
		default:
			p.trimTo(p.low())
		}
	}
	p.mu.Unlock()
}

// cursor is one group's position on one partition.
type cursor struct {
	part    *partition
	durable bool

	// Guarded by part.mu.
	committed int64 // next offset the group needs
	delivered int64 // offsets below were handed to a handler of the group

	// owner is the member that may read the partition for the group; nil
	// when the group has no member. It is written under the group's mu.
	owner atomic.Pointer[consumer]
	// active is the owner's live assignment, whose reader publishers wake;
	// nil between owners.
	active atomic.Pointer[assignment]

	// target is the member the assignment gives the partition to; guarded
	// by the group's mu.
	target *consumer
}

// hashKey is 32-bit FNV-1a: stable across processes and releases, so a key
// always maps to the same partition.
func hashKey(s string) uint32 {
	h := uint32(2166136261)
	for i := 0; i < len(s); i++ {
		h ^= uint32(s[i])
		h *= 16777619
	}
	return h
}
