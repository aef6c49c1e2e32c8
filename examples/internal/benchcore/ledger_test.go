package benchcore

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"
)

func TestLedgerCountsLossAndDuplicates(t *testing.T) {
	l := NewLedger()
	l.Sent(102)
	for seq := range uint64(100) {
		l.Acked(seq)
	}
	l.Failed(100)
	l.Failed(101)
	for seq := range uint64(90) {
		if l.Consumed(seq) {
			t.Fatalf("first consumption of %d reported as a duplicate", seq)
		}
	}
	if !l.Consumed(5) {
		t.Error("second consumption of 5 not reported as a duplicate")
	}
	l.Consumed(101) // a failed publish that arrived anyway
	l.Foreign()

	c := l.Counts()
	want := Counts{Sent: 102, Acked: 100, Failed: 2, Consumed: 91, Duplicates: 1, Matched: 90, Foreign: 1}
	if c != want {
		t.Errorf("Counts() = %+v, want %+v", c, want)
	}
	if c.Lost() != 10 || c.Unconfirmed() != 1 {
		t.Errorf("Lost() = %d, Unconfirmed() = %d; want 10, 1", c.Lost(), c.Unconfirmed())
	}
	if got, want := l.Missing(100), []uint64{90, 91, 92, 93, 94, 95, 96, 97, 98, 99}; !slices.Equal(got, want) {
		t.Errorf("Missing(100) = %v, want %v", got, want)
	}
	if got := l.Missing(3); !slices.Equal(got, []uint64{90, 91, 92}) {
		t.Errorf("Missing(3) = %v", got)
	}
}

func TestLedgerConsumedBeforeAcked(t *testing.T) {
	l := NewLedger()
	l.Consumed(42) // the consumer can be faster than the confirmation
	if c := l.Counts(); c.Lost() != 0 || c.Unconfirmed() != 1 {
		t.Fatalf("before the ack: %+v", c)
	}
	l.Acked(42)
	l.Acked(42) // counted once
	if c := l.Counts(); c.Acked != 1 || c.Matched != 1 || c.Lost() != 0 || c.Unconfirmed() != 0 {
		t.Fatalf("after the ack: %+v", c)
	}
}

func TestLedgerChunkEdgesAndRange(t *testing.T) {
	l := NewLedger()
	edges := []uint64{chunkBits - 1, chunkBits, 3*chunkBits + 5}
	for _, seq := range edges {
		l.Acked(seq)
	}
	l.Consumed(chunkBits)
	if got := l.Missing(10); !slices.Equal(got, []uint64{chunkBits - 1, 3*chunkBits + 5}) {
		t.Errorf("Missing = %v", got)
	}
	l.Acked(maxChunks * chunkBits) // past the table
	if c := l.Counts(); c.OutOfRange != 1 || c.Acked != 3 {
		t.Errorf("Counts = %+v, want 3 acked and 1 out of range", c)
	}
}

func TestLedgerConcurrent(t *testing.T) {
	const n = 200_000
	l := NewLedger()
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for seq := uint64(w); seq < n; seq += 4 {
				l.Acked(seq)
			}
		})
		wg.Go(func() {
			for seq := uint64(n - 1 - w); seq < n; seq -= 4 { // other order; ends on wrap-around
				l.Consumed(seq)
			}
		})
	}
	wg.Wait()
	c := l.Counts()
	if c.Acked != n || c.Consumed != n || c.Matched != n || c.Duplicates != 0 || c.Lost() != 0 {
		t.Fatalf("Counts = %+v", c)
	}
}

func TestLedgerWaitDrained(t *testing.T) {
	l := NewLedger()
	for seq := range uint64(1000) {
		l.Acked(seq)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- l.WaitDrained(ctx) }()
	go func() {
		for seq := range uint64(1000) {
			l.Consumed(seq)
		}
	}()
	if err := <-done; err != nil {
		t.Fatalf("WaitDrained: %v", err)
	}
	if c := l.Counts(); c.Lost() != 0 {
		t.Fatalf("WaitDrained returned with %d lost", c.Lost())
	}

	l.Acked(5000) // never consumed
	cctx, ccancel := context.WithCancel(context.Background())
	ccancel()
	if err := l.WaitDrained(cctx); err != context.Canceled {
		t.Fatalf("WaitDrained with an event missing and ctx cancelled = %v, want context.Canceled", err)
	}
}
