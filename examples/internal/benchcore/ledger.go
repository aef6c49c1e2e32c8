package benchcore

import (
	"context"
	"math/bits"
	"sync/atomic"
)

// bitset is a concurrent set of sequence numbers: a fixed table of lazily
// allocated chunks, so it grows with the run without locks or copying.
// Memory is one bit per number up to the highest set, in 512 KiB steps.
type bitset struct {
	chunks [maxChunks]atomic.Pointer[chunk]
}

const (
	chunkWords = 1 << 16 // 512 KiB, 4 Mi numbers per chunk
	chunkBits  = chunkWords * 64
	maxChunks  = 1 << 12 // up to 2^34 numbers (17 billion events)
)

type chunk [chunkWords]atomic.Uint64

// set adds n and reports whether it was already there. ok is false when n
// is beyond what the set can hold.
func (b *bitset) set(n uint64) (was, ok bool) {
	c := b.chunkFor(n, true)
	if c == nil {
		return false, false
	}
	bit := uint64(1) << (n % 64)
	old := c[(n%chunkBits)/64].Or(bit)
	return old&bit != 0, true
}

// has reports whether n is in the set.
func (b *bitset) has(n uint64) bool {
	c := b.chunkFor(n, false)
	if c == nil {
		return false
	}
	return c[(n%chunkBits)/64].Load()&(1<<(n%64)) != 0
}

func (b *bitset) chunkFor(n uint64, create bool) *chunk {
	i := n / chunkBits
	if i >= maxChunks {
		return nil
	}
	p := &b.chunks[i]
	if c := p.Load(); c != nil || !create {
		return c
	}
	c := new(chunk)
	if p.CompareAndSwap(nil, c) {
		return c
	}
	return p.Load()
}

// Ledger accounts for the events of a run by sequence number. It is safe
// for concurrent use; every method is a few atomic operations.
//
// An event is lost when it was acknowledged by the broker (Publish returned
// nil for it) and never consumed; a duplicate is a second (or later)
// consumption of one event. An event whose Publish failed is not expected,
// but if it arrives anyway it counts as consumed and unconfirmed.
type Ledger struct {
	acked, consumed, matched bitset

	sent, ackedN, failedN   atomic.Int64
	consumedN, dupN, matchN atomic.Int64
	foreignN, outOfRangeN   atomic.Int64
	poke                    chan struct{}
}

// NewLedger returns an empty ledger.
func NewLedger() *Ledger { return &Ledger{poke: make(chan struct{}, 1)} }

// Sent counts n events handed to Publish.
func (l *Ledger) Sent(n int) { l.sent.Add(int64(n)) }

// Acked records that the broker confirmed event seq.
func (l *Ledger) Acked(seq uint64) {
	was, ok := l.acked.set(seq)
	if !ok {
		l.outOfRangeN.Add(1)
		return
	}
	if was {
		return
	}
	l.ackedN.Add(1)
	if l.consumed.has(seq) {
		l.match(seq)
	}
}

// Failed records that Publish reported event seq as not confirmed.
func (l *Ledger) Failed(seq uint64) { l.failedN.Add(1) }

// Consumed records that a subscriber received event seq, and reports
// whether it had received it before (a duplicate).
func (l *Ledger) Consumed(seq uint64) (duplicate bool) { return l.ConsumedFirst(seq, nil) }

// ConsumedFirst is Consumed that, for a first consumption, runs first (if
// not nil) before the event counts as consumed: whoever waits for the
// count (the end of a run) then also sees what first recorded, such as
// the event's latency.
func (l *Ledger) ConsumedFirst(seq uint64, first func()) (duplicate bool) {
	was, ok := l.consumed.set(seq)
	if !ok {
		l.outOfRangeN.Add(1)
		return false
	}
	if was {
		l.dupN.Add(1)
		return true
	}
	if first != nil {
		first()
	}
	l.consumedN.Add(1)
	if l.acked.has(seq) {
		l.match(seq)
	}
	return false
}

// Foreign counts a consumed message that is not an event of this run.
func (l *Ledger) Foreign() { l.foreignN.Add(1) }

// match counts seq as acknowledged and consumed, once: Acked and Consumed
// may both see the other's bit, and the matched set decides.
func (l *Ledger) match(seq uint64) {
	if was, _ := l.matched.set(seq); was {
		return
	}
	l.matchN.Add(1)
	select {
	case l.poke <- struct{}{}:
	default:
	}
}

// Counts is a snapshot of a Ledger.
type Counts struct {
	// Sent events were handed to Publish; Acked were confirmed by the
	// broker; Failed were reported unconfirmed by Publish.
	Sent, Acked, Failed int64
	// Consumed counts distinct events received; Duplicates the receptions
	// beyond the first.
	Consumed, Duplicates int64
	// Matched events were both acknowledged and consumed.
	Matched int64
	// Foreign counts messages that were not events of this run (another
	// run's leftovers); OutOfRange numbers too large to account for.
	Foreign, OutOfRange int64
}

// Lost is the number of acknowledged events not consumed (yet).
func (c Counts) Lost() int64 { return c.Acked - c.Matched }

// Unconfirmed is the number of consumed events never acknowledged (their
// Publish failed or had not returned yet).
func (c Counts) Unconfirmed() int64 { return c.Consumed - c.Matched }

// Counts returns the current counts. While events are in flight the
// fields are read one after the other, not as one atomic snapshot.
func (l *Ledger) Counts() Counts {
	return Counts{
		Sent: l.sent.Load(), Acked: l.ackedN.Load(), Failed: l.failedN.Load(),
		Consumed: l.consumedN.Load(), Duplicates: l.dupN.Load(), Matched: l.matchN.Load(),
		Foreign: l.foreignN.Load(), OutOfRange: l.outOfRangeN.Load(),
	}
}

// WaitDrained blocks until every acknowledged event has been consumed or
// ctx ends; it returns ctx's error in the second case. Call it once
// publishing has stopped.
func (l *Ledger) WaitDrained(ctx context.Context) error {
	for {
		if l.matchN.Load() >= l.ackedN.Load() {
			return nil
		}
		select {
		case <-l.poke:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Missing returns up to limit acknowledged and never consumed sequence
// numbers, lowest first: what a lost-event report names.
func (l *Ledger) Missing(limit int) []uint64 {
	var out []uint64
	for i := range l.acked.chunks {
		a := l.acked.chunks[i].Load()
		if a == nil {
			continue
		}
		m := l.matched.chunks[i].Load()
		for w := range a {
			miss := a[w].Load()
			if m != nil {
				miss &^= m[w].Load()
			}
			for miss != 0 && len(out) < limit {
				b := bits.TrailingZeros64(miss)
				out = append(out, uint64(i)*chunkBits+uint64(w)*64+uint64(b))
				miss &= miss - 1
			}
			if len(out) >= limit {
				return out
			}
		}
	}
	return out
}
