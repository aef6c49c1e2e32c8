package kafkabus_test

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/IBM/sarama"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/kafkabus"
)

// BenchmarkPublishAwaiting is the workload of services whose callers await
// each Publish: 64 goroutines, one message per call, on one 3-broker
// cluster, arms alternated within the run. It reports per arm the rate,
// the process CPU per message (client and in-process brokers together) and
// the median call latency. Run with a fixed count, e.g.
//
//	go test ./kafkabus/ -run '^$' -bench PublishAwaiting -benchtime 50000x
func BenchmarkPublishAwaiting(b *testing.B) {
	c, _, topic := benchCluster(b)
	value := benchValue()
	type arm struct {
		name    string
		publish func(ctx context.Context, i int) error
	}
	var arms []arm
	for _, fc := range []struct {
		name string
		f    func(*kafkabus.Config)
	}{
		{"kafkabus", func(*kafkabus.Config) {}},
		{"kafkabus-linger-1ms", func(c *kafkabus.Config) {
			c.FlushFrequency, c.FlushMessages, c.FlushBytes = time.Millisecond, 500, 512<<10
		}},
	} {
		cfg := testConfig(c)
		fc.f(&cfg)
		kb := openBackend(b, cfg)
		arms = append(arms, arm{fc.name, func(ctx context.Context, i int) error {
			return kb.Publish(ctx, &broker.Message{Topic: topic, Key: "key-" + strconv.Itoa(i%100), Body: value,
				Headers: broker.Headers{{Key: "ce_type", Value: "bench"}}})
		}})
	}
	sc := rawProducerConfig()
	sc.Producer.Flush.Frequency, sc.Producer.Flush.Messages, sc.Producer.Flush.Bytes = 0, 0, 0
	sp, err := sarama.NewSyncProducer(c.Addrs(), sc)
	if err != nil {
		b.Fatal(err)
	}
	defer sp.Close()
	arms = append(arms, arm{"sarama-sync", func(_ context.Context, i int) error {
		_, _, err := sp.SendMessage(&sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("key-" + strconv.Itoa(i%100)),
			Value: sarama.ByteEncoder(value), Headers: []sarama.RecordHeader{{Key: []byte("ce_type"), Value: []byte("bench")}}})
		return err
	}})

	kc, err := kgo.NewClient(kgo.SeedBrokers(c.Addrs()...), kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.ProducerBatchCompression(kgo.NoCompression()), kgo.ProducerLinger(0), kgo.RecordPartitioner(kgo.StickyKeyPartitioner(nil)))
	if err != nil {
		b.Fatal(err)
	}
	defer kc.Close()
	arms = append(arms, arm{"franz-go", func(ctx context.Context, i int) error {
		return kc.ProduceSync(ctx, &kgo.Record{Topic: topic, Key: []byte("key-" + strconv.Itoa(i%100)), Value: value,
			Headers: []kgo.RecordHeader{{Key: "ce_type", Value: []byte("bench")}}}).FirstErr()
	}})

	const reps = 3
	rates := map[string][]float64{}
	cpus := map[string][]float64{}
	p50s := map[string][]float64{}
	b.ResetTimer()
	for r := range reps {
		for k := range arms {
			a := arms[(k+r)%len(arms)]
			n := b.N
			lat := make([]time.Duration, n)
			var next atomic.Int64
			cpu0, start := cpuTime(), time.Now()
			var wg sync.WaitGroup
			for range 64 {
				wg.Go(func() {
					for {
						i := int(next.Add(1) - 1)
						if i >= n {
							return
						}
						t0 := time.Now()
						if err := a.publish(context.Background(), i); err != nil {
							b.Error(err)
							return
						}
						lat[i] = time.Since(t0)
					}
				})
			}
			wg.Wait()
			el, cpu := time.Since(start), cpuTime()-cpu0
			slices.Sort(lat)
			rates[a.name] = append(rates[a.name], float64(n)/el.Seconds())
			cpus[a.name] = append(cpus[a.name], float64(cpu.Nanoseconds())/float64(n))
			p50s[a.name] = append(p50s[a.name], float64(lat[n/2].Microseconds()))
		}
	}
	med := func(xs []float64) float64 { slices.Sort(xs); return xs[len(xs)/2] }
	for _, a := range arms {
		b.ReportMetric(med(rates[a.name]), a.name+"-msgs/s")
		b.ReportMetric(med(cpus[a.name]), a.name+"-cpu-ns/msg")
		b.ReportMetric(med(p50s[a.name]), a.name+"-p50-µs")
		fmt.Printf("%-22s %10.0f msgs/s %8.0f cpu-ns/msg %6.0f p50-µs\n", a.name, med(rates[a.name]), med(cpus[a.name]), med(p50s[a.name]))
	}
}

// BenchmarkPublishAsync is one caller that does not wait a round trip per
// event: PublishAsync for every message, one per call, then the
// completions. It reports the rate, the CPU per message, and the loss
// accounting: messages confirmed by done, failed, and then found on the
// topic (read back whole: lost = confirmed but absent, dup = found twice).
//
//	go test ./kafkabus/ -run '^$' -bench PublishAsync -benchtime 200000x
func BenchmarkPublishAsync(b *testing.B) {
	c, kb, topic := benchCluster(b)
	value := benchValue()
	n := b.N
	var wg sync.WaitGroup
	var ok, failed atomic.Int64
	ctx := context.Background()
	b.ResetTimer()
	cpu0, start := cpuTime(), time.Now()
	for i := range n {
		wg.Add(1)
		m := &broker.Message{Topic: topic, Key: "key-" + strconv.Itoa(i%100), Body: value,
			Headers: broker.Headers{{Key: "seq", Value: strconv.Itoa(i)}}}
		if err := kb.PublishAsync(ctx, func(err error) {
			if err != nil {
				failed.Add(1)
			} else {
				ok.Add(1)
			}
			wg.Done()
		}, m); err != nil {
			b.Fatal(err)
		}
	}
	wg.Wait()
	el, cpu := time.Since(start), cpuTime()-cpu0
	b.StopTimer()
	found := map[string]int{}
	for _, m := range readAll(b, c, topic) {
		for _, h := range m.Headers {
			if string(h.Key) == "seq" {
				found[string(h.Value)]++
			}
		}
	}
	dups := 0
	for _, k := range found {
		dups += k - 1
	}
	lost := int(ok.Load()) - len(found)
	b.ReportMetric(float64(n)/el.Seconds(), "msgs/s")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/msg")
	b.ReportMetric(float64(ok.Load()), "confirmed")
	b.ReportMetric(float64(failed.Load()), "failed")
	b.ReportMetric(float64(max(lost, 0)), "lost")
	b.ReportMetric(float64(dups), "dup")
	if lost > 0 || dups > 0 || failed.Load() > 0 {
		b.Fatalf("%d confirmed, %d failed, %d found: %d lost, %d duplicates", ok.Load(), failed.Load(), len(found), lost, dups)
	}
}
