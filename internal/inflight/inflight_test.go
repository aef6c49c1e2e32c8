package inflight

import (
	"sync"
	"testing"
	"time"
)

func TestSnapshotReportsCountAndOldest(t *testing.T) {
	s := New(2)
	if n, oldest := s.Snapshot(); n != 0 || !oldest.IsZero() {
		t.Fatalf("empty set: %d, %v", n, oldest)
	}
	base := time.Unix(1_700_000_000, 0)
	a := s.Add(base.Add(2 * time.Second))
	b := s.Add(base)
	c := s.Add(base.Add(time.Second)) // beyond the initial capacity
	if n, oldest := s.Snapshot(); n != 3 || !oldest.Equal(base) {
		t.Fatalf("three in flight: %d, oldest %v, want 3, %v", n, oldest, base)
	}
	s.Done(b)
	if n, oldest := s.Snapshot(); n != 2 || !oldest.Equal(base.Add(time.Second)) {
		t.Fatalf("after the oldest finished: %d, oldest %v", n, oldest)
	}
	s.Done(c)
	s.Done(c) // twice is harmless
	s.Done(a)
	if n, _ := s.Snapshot(); n != 0 {
		t.Fatalf("all done: %d in flight", n)
	}
}

func TestConcurrentAddDone(t *testing.T) {
	s := New(8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				s.Done(s.Add(time.Now()))
			}
		})
	}
	wg.Wait()
	if n, _ := s.Snapshot(); n != 0 {
		t.Fatalf("%d left in flight after balanced Add/Done", n)
	}
}
