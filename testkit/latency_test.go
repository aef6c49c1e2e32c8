package testkit_test

import (
	"math"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/testkit"
)

// within reports whether got is want up to the histogram's precision: 3
// significant digits (1/1024 of the value) or its 512ns floor below 1ms.
func within(got, want time.Duration) bool {
	tol := max(time.Duration(float64(want)/1024)+1, 512*time.Nanosecond)
	return got >= want-tol && got <= want+tol
}

func TestLatencyMeasurerEmpty(t *testing.T) {
	var m testkit.LatencyMeasurer // the zero value is ready
	if s := m.Snapshot(); s != (testkit.LatencyStats{}) {
		t.Fatalf("empty snapshot %+v", s)
	}
	if m.Percentile(99) != 0 || m.Count() != 0 || m.String() != "n=0" {
		t.Fatalf("empty: p99 %v count %d %q", m.Percentile(99), m.Count(), m.String())
	}
}

func TestLatencyMeasurerUniformDistribution(t *testing.T) {
	m := testkit.NewLatencyMeasurer()
	// 1µs … 100ms in 1µs steps, shuffled: percentile q is q% of 100ms.
	const n = 100_000
	for _, i := range rand.New(rand.NewPCG(1, 2)).Perm(n) {
		m.Record(time.Duration(i+1) * time.Microsecond)
	}
	s := m.Snapshot()
	if s.Count != n || s.Min != time.Microsecond || s.Max != 100*time.Millisecond {
		t.Fatalf("count/min/max = %d/%v/%v", s.Count, s.Min, s.Max)
	}
	if want := time.Duration(50_000_500) * time.Nanosecond; s.Mean != want { // exact: (1+n)/2 µs
		t.Fatalf("mean %v, want %v", s.Mean, want)
	}
	for _, c := range []struct {
		name string
		got  time.Duration
		want time.Duration
	}{
		{"p50", s.P50, 50 * time.Millisecond},
		{"p95", s.P95, 95 * time.Millisecond},
		{"p99", s.P99, 99 * time.Millisecond},
		{"p99.9", s.P999, 99_900 * time.Microsecond},
		{"p10", m.Percentile(10), 10 * time.Millisecond},
		{"p0.5", m.Percentile(0.5), 500 * time.Microsecond},
		{"p99.99", m.Percentile(99.99), 99_990 * time.Microsecond},
	} {
		if !within(c.got, c.want) {
			t.Errorf("%s = %v, want %v within 3 significant digits", c.name, c.got, c.want)
		}
	}
	if m.Percentile(0) != s.Min || m.Percentile(100) != s.Max || m.Percentile(250) != s.Max || m.Percentile(-1) != s.Min || m.Percentile(math.NaN()) != s.Min {
		t.Fatal("percentiles outside 0–100 are not clamped to min/max")
	}
	out := s.String()
	for _, want := range []string{"n=100000", "min=1µs", "p99=", "max=100ms"} {
		if !strings.Contains(out, want) {
			t.Errorf("String() = %q lacks %q", out, want)
		}
	}
}

func TestLatencyMeasurerBimodal(t *testing.T) {
	var m testkit.LatencyMeasurer
	for range 9_800 {
		m.Record(2 * time.Millisecond)
	}
	for range 200 {
		m.Record(400 * time.Millisecond)
	}
	s := m.Snapshot()
	if !within(s.P50, 2*time.Millisecond) || !within(s.P95, 2*time.Millisecond) || !within(s.P99, 400*time.Millisecond) {
		t.Fatalf("bimodal 98%%/2%%: %v", s)
	}
	if !within(s.Mean, 9_960*time.Microsecond) {
		t.Fatalf("mean %v", s.Mean)
	}
}

func TestLatencyMeasurerOutOfRangeValues(t *testing.T) {
	var m testkit.LatencyMeasurer
	m.Record(-5 * time.Second)
	m.Record(300 * time.Nanosecond)
	m.Record(2 * time.Minute)
	s := m.Snapshot()
	if s.Min != 0 || s.Max != 2*time.Minute || s.Count != 3 || s.Mean != (300*time.Nanosecond+2*time.Minute)/3 {
		t.Fatalf("exact min/max/mean lost: %+v", s)
	}
	// Above the histogram's 60s the percentiles saturate there.
	if s.P50 > time.Microsecond || !within(s.P999, time.Minute) {
		t.Fatalf("p50 %v p99.9 %v", s.P50, s.P999)
	}
}

func TestLatencyMeasurerSinceAndReset(t *testing.T) {
	var m testkit.LatencyMeasurer
	start := time.Now().Add(-3 * time.Millisecond)
	if d := m.Since(start); d < 3*time.Millisecond || m.Count() != 1 || m.Snapshot().Max != d {
		t.Fatalf("Since returned %v; count %d", d, m.Count())
	}
	m.Reset()
	if m.Count() != 0 || m.Snapshot() != (testkit.LatencyStats{}) {
		t.Fatal("Reset kept samples")
	}
	m.Record(time.Millisecond)
	if s := m.Snapshot(); s.Count != 1 || s.Min != time.Millisecond || s.P50 != time.Millisecond {
		t.Fatalf("after Reset: %+v", s)
	}
}

func TestLatencyMeasurerConcurrent(t *testing.T) {
	var m testkit.LatencyMeasurer
	const goroutines, each = 8, 20_000
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				m.Record(time.Duration(g*each+i+1) * time.Microsecond)
			}
		})
	}
	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				s := m.Snapshot()
				if s.Count > 0 && (s.P50 < s.Min || s.P99 > s.Max) {
					t.Errorf("inconsistent snapshot %v", s)
				}
				_ = m.Percentile(99.9)
			}
		}
	})
	wg.Wait()
	close(stop)
	readers.Wait()
	const n = goroutines * each
	s := m.Snapshot()
	if s.Count != n || s.Min != time.Microsecond || s.Max != n*time.Microsecond {
		t.Fatalf("after concurrent recording: %v", s)
	}
	if !within(s.P50, n/2*time.Microsecond) || !within(s.P99, n*99/100*time.Microsecond) {
		t.Fatalf("percentiles %v", s)
	}
}

func TestLatencyMeasurerMemoryIsBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("records 5M samples")
	}
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	var m testkit.LatencyMeasurer
	m.Record(time.Millisecond) // allocate the first shard
	before := heap()
	r := rand.New(rand.NewPCG(3, 4))
	for range 5_000_000 {
		m.Record(time.Duration(r.Int64N(int64(10 * time.Second))))
	}
	after := heap()
	if grew := int64(after) - int64(before); grew > 4<<20 {
		t.Fatalf("5M samples grew the heap by %d bytes", grew)
	}
	if s := m.Snapshot(); s.Count != 5_000_001 || !within(s.P50, 5*time.Second) {
		t.Fatalf("after 5M samples: %v", s)
	}
	runtime.KeepAlive(&m)
}

// BenchmarkLatencyMeasurerRecord measures Record from one goroutine and from
// GOMAXPROCS goroutines at once.
func BenchmarkLatencyMeasurerRecord(b *testing.B) {
	b.Run("serial", func(b *testing.B) {
		var m testkit.LatencyMeasurer
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			m.Record(time.Duration(i&0xfffff) * time.Microsecond)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		var m testkit.LatencyMeasurer
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				m.Record(time.Duration(i&0xfffff) * time.Microsecond)
				i++
			}
		})
	})
}
