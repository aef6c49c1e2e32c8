package memory_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/internal/samples"
)

// benchMessage is a job.status_changed event as the Bus sends it: Avro body
// padded to 300 bytes, CloudEvents headers.
func benchMessage(b *testing.B) *broker.Message {
	b.Helper()
	bus, err := events.NewBus(nil, events.WithSource("bench"))
	if err != nil {
		b.Fatal(err)
	}
	ev := eventmodels.NewJobStatusChanged("astro-user-7", "job-000042", eventmodels.StatusRunning, eventmodels.StatusRunning, 42.5,
		eventmodels.WithClock(samples.Clock), eventmodels.WithCorrelationID(samples.Correlation))
	for pad := 0; ; pad++ {
		ev.Message = strings.Repeat("x", pad)
		m, err := bus.Message(ev)
		if err != nil {
			b.Fatal(err)
		}
		if len(m.Body) >= 300 {
			return m
		}
	}
}

// BenchmarkPublishHandle measures publish→handle throughput: publishers
// goroutines each publish single messages (one Publish call per message)
// keyed over 1,000 jobs to job-lifecycle (10 partitions); one group with
// Concurrency 1 handles them. msgs/s counts from the first publish to the
// last message handled.
func BenchmarkPublishHandle(b *testing.B) {
	tmpl := benchMessage(b)
	keys := make([]string, 1000)
	for i := range keys {
		keys[i] = fmt.Sprintf("job-%06d", i)
	}
	for _, publishers := range []int{1, 4} {
		b.Run(fmt.Sprintf("publishers=%d", publishers), func(b *testing.B) {
			br := mustNew(b, memory.Config{Topics: events.PlatformTopics()})
			defer br.Close()
			ctx := context.Background()
			var handled atomic.Int64
			done := make(chan struct{})
			total := int64(b.N)
			_, err := br.Subscribe(ctx, broker.Subscription{Topic: eventmodels.TopicJobLifecycle, Group: "bench"},
				func(context.Context, *broker.Message) error {
					if handled.Add(1) == total {
						close(done)
					}
					return nil
				})
			if err != nil {
				b.Fatal(err)
			}
			b.SetBytes(int64(len(tmpl.Body)))
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for p := range publishers {
				n := b.N / publishers
				if p == 0 {
					n += b.N % publishers
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					m := *tmpl // Publish does not keep or modify it: reuse
					m.Topic = eventmodels.TopicJobLifecycle
					for i := range n {
						m.Key = keys[(p*7919+i)%len(keys)]
						if err := br.Publish(ctx, &m); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			<-done
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "msgs/s")
		})
	}
}

// BenchmarkLatency publishes at a paced 10,000 msg/s (one message per
// Publish call, on an absolute schedule) and records, per message, the time
// from just before Publish to the start of its handler.
func BenchmarkLatency(b *testing.B) {
	const rate = 10_000
	tmpl := benchMessage(b)
	br := mustNew(b, memory.Config{Topics: events.PlatformTopics()})
	defer br.Close()
	ctx := context.Background()
	sent := make([]time.Time, b.N)
	lat := make([]time.Duration, b.N)
	var handled atomic.Int64
	done := make(chan struct{})
	_, err := br.Subscribe(ctx, broker.Subscription{Topic: eventmodels.TopicJobLifecycle, Group: "latency"},
		func(_ context.Context, m *broker.Message) error {
			i, _ := strconv.Atoi(m.Header("bench-i"))
			lat[i] = time.Since(sent[i]) // sent[i] is written before Publish, under the partition lock
			if handled.Add(1) == int64(len(lat)) {
				close(done)
			}
			return nil
		})
	if err != nil {
		b.Fatal(err)
	}
	interval := time.Second / rate
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d) // pacing, not synchronisation
		}
		m := tmpl.Clone()
		m.Topic = eventmodels.TopicJobLifecycle
		m.Key = "job-" + strconv.Itoa(i%1000)
		m.SetHeader("bench-i", strconv.Itoa(i))
		sent[i] = time.Now()
		if err := br.Publish(ctx, m); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
	slices.Sort(lat)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(lat[len(lat)/2]), "p50-µs")
	b.ReportMetric(us(lat[len(lat)*99/100]), "p99-µs")
	b.ReportMetric(us(lat[len(lat)-1]), "max-µs")
}
