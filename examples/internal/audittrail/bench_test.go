package audittrail_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/examples/internal/audittrail"
)

// BenchmarkAppend measures durable appends (each returns after its fsync)
// of ~480-byte records, by 1, 8 and 64 concurrent appenders, and with 8
// appenders and a commit delay.
//
//	go test -run '^$' -bench . -benchtime 3s ./examples/internal/audittrail/
func BenchmarkAppend(b *testing.B) {
	for _, c := range []struct {
		appenders int
		delay     time.Duration
	}{{1, 0}, {8, 0}, {64, 0}, {8, 50 * time.Microsecond}} {
		name := fmt.Sprintf("appenders=%d", c.appenders)
		if c.delay > 0 {
			name += fmt.Sprintf("/commit_delay=%v", c.delay)
		}
		n := c.appenders
		b.Run(name, func(b *testing.B) {
			tr := open(b, b.TempDir(), audittrail.CommitDelay(c.delay))
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			start := time.Now()
			for range n {
				wg.Go(func() {
					for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
						if ok, err := tr.Append(ctx, tinyEntry("job-bench", int(i))); !ok || err != nil {
							b.Errorf("Append = %v, %v", ok, err)
							return
						}
					}
				})
			}
			wg.Wait()
			elapsed := time.Since(start)
			b.StopTimer()
			st := tr.Stats()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
			b.ReportMetric(float64(st.Appended)/float64(max(st.Syncs, 1)), "records/fsync")
		})
	}
}

// BenchmarkFsync is the floor: one write and one fsync of a record-sized
// line, as a serial Append does.
func BenchmarkFsync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "f"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	line := make([]byte, 480)
	line[len(line)-1] = '\n'
	for b.Loop() {
		if _, err := f.Write(line); err != nil {
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}
