// Package inflight counts the messages a subscription has handed out and
// not yet finished, and remembers when the oldest of them was received, so
// that a backend's Health can show a consumer stuck on a message.
package inflight

import (
	"sync"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

// Set tracks the messages in flight of one subscription. Add and Done cost
// a short critical section each; Snapshot scans the slots in use. It is
// safe for concurrent use.
type Set struct {
	mu    sync.Mutex
	at    []int64 // receive time (Unix ns) per slot; 0 = free
	free  []int32
	count int
}

// New returns a Set sized for capacity messages in flight (it grows if
// more are added).
func New(capacity int) *Set {
	s := &Set{}
	s.grow(max(capacity, 1))
	return s
}

func (s *Set) grow(n int) {
	base := len(s.at)
	s.at = append(s.at, make([]int64, n)...)
	for i := base + n - 1; i >= base; i-- {
		s.free = append(s.free, int32(i))
	}
}

// Add records a message received at t and returns its slot for Done.
func (s *Set) Add(t time.Time) int32 {
	ns := t.UnixNano()
	if ns == 0 {
		ns = 1
	}
	s.mu.Lock()
	if len(s.free) == 0 {
		s.grow(len(s.at))
	}
	slot := s.free[len(s.free)-1]
	s.free = s.free[:len(s.free)-1]
	s.at[slot] = ns
	s.count++
	s.mu.Unlock()
	return slot
}

// Done records that the message in slot finished (acknowledged, committed
// or given up). A slot must be done once.
func (s *Set) Done(slot int32) {
	s.mu.Lock()
	if s.at[slot] != 0 {
		s.at[slot] = 0
		s.free = append(s.free, slot)
		s.count--
	}
	s.mu.Unlock()
}

// Snapshot returns how many messages are in flight and when the oldest of
// them was received (zero when none).
func (s *Set) Snapshot() (n int, oldest time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.count == 0 {
		return 0, time.Time{}
	}
	var min int64
	for _, ns := range s.at {
		if ns != 0 && (min == 0 || ns < min) {
			min = ns
		}
	}
	return s.count, time.Unix(0, min)
}

// Report returns the set as a broker.InFlight of group on topic, ages
// measured at now.
func (s *Set) Report(group, topic string, now time.Time) broker.InFlight {
	n, oldest := s.Snapshot()
	f := broker.InFlight{Group: group, Topic: topic, Messages: n}
	if n > 0 {
		f.OldestAge = max(now.Sub(oldest), 0)
	}
	return f
}
