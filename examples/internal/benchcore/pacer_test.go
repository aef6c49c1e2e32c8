package benchcore

import (
	"context"
	"testing"
	"time"
)

func TestPacerSchedule(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := NewPacer(1000, start)
	cases := []struct {
		n    uint64
		want time.Duration
	}{{0, 0}, {1, time.Millisecond}, {1000, time.Second}, {2500, 2500 * time.Millisecond}}
	for _, c := range cases {
		if got := p.At(c.n).Sub(start); got != c.want {
			t.Errorf("At(%d) = start+%v, want start+%v", c.n, got, c.want)
		}
	}
	for _, c := range []struct {
		at   time.Duration
		want uint64
	}{{-time.Second, 0}, {0, 1}, {999 * time.Microsecond, 1}, {time.Millisecond, 2}, {1500 * time.Millisecond, 1501}} {
		if got := p.Due(start.Add(c.at)); got != c.want {
			t.Errorf("Due(start+%v) = %d, want %d", c.at, got, c.want)
		}
	}
	// A fractional rate keeps an exact schedule too.
	if got := NewPacer(2.5, start).At(5).Sub(start); got != 2*time.Second {
		t.Errorf("At(5) at 2.5/s = start+%v, want start+2s", got)
	}
}

func TestPacerUnpaced(t *testing.T) {
	start := time.Now()
	for _, rate := range []float64{0, -3} {
		p := NewPacer(rate, start)
		if p.Rate() != 0 || !p.At(1_000_000).Equal(start) || p.Due(start) != ^uint64(0) {
			t.Errorf("rate %v: Rate %v, At %v, Due %d; want no pacing", rate, p.Rate(), p.At(1_000_000), p.Due(start))
		}
		if err := p.Wait(context.Background(), 1_000_000); err != nil {
			t.Errorf("rate %v: Wait = %v", rate, err)
		}
	}
}

func TestPacerWaitHonoursContext(t *testing.T) {
	p := NewPacer(1, time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Wait(ctx, 3600); err != context.Canceled {
		t.Fatalf("Wait for an event an hour away with ctx cancelled = %v, want context.Canceled", err)
	}
	if err := p.Wait(context.Background(), 0); err != nil {
		t.Fatalf("Wait for an event already due = %v", err)
	}
}
