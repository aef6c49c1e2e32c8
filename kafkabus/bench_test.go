package kafkabus_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/kafkabus"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// Benchmarks compare kafkabus with raw sarama on the same workload: a fresh
// 3-broker kafkatest cluster per benchmark, a 10-partition topic, 300-byte
// random values, 100 keys. Run them with a fixed count, e.g.
//
//	go test ./kafkabus/ -run '^$' -bench . -benchtime 100000x -count 1
//
// msgs/s is the figure to compare; ns/op is per message.

const benchPartitions = 10

func benchValue() []byte {
	v := make([]byte, 300)
	_, _ = rand.Read(v)
	return v
}

func benchCluster(b testing.TB) (*kafkatest.Cluster, *kafkabus.Backend, string) {
	b.Helper()
	c := kafkatest.NewCluster(b)
	kb := newBackend(b, c)
	topic := newTopic(b, kb, "bench", benchPartitions)
	return c, kb, topic
}

// rawProducerConfig is sarama configured as kafkabus configures it
// (idempotent, acks=all, murmur2, the same flush settings), so the
// difference measured is kafkabus's own cost.
func rawProducerConfig() *sarama.Config {
	sc := rawConfig()
	sc.Producer.Idempotent = true
	sc.Net.MaxOpenRequests = 1
	sc.Producer.Retry.Max = 10
	sc.Producer.Partitioner = sarama.NewMurmur2Partitioner
	// kafkabus's default flush: every trigger off (sarama's zeros), so a
	// batch goes as soon as the broker's previous request is answered.
	sc.Producer.Flush.Frequency, sc.Producer.Flush.Messages, sc.Producer.Flush.Bytes = 0, 0, 0
	return sc
}

func reportRate(b *testing.B, n int, d time.Duration) {
	b.ReportMetric(float64(n)/d.Seconds(), "msgs/s")
}

func BenchmarkPublish(b *testing.B) {
	value := benchValue()
	b.Run("sarama-async", func(b *testing.B) {
		c, _, topic := benchCluster(b)
		p, err := sarama.NewAsyncProducer(c.Addrs(), rawProducerConfig())
		if err != nil {
			b.Fatal(err)
		}
		defer p.Close()
		done := make(chan struct{})
		go func() {
			for n := 0; n < b.N; n++ {
				select {
				case <-p.Successes():
				case err := <-p.Errors():
					b.Error(err)
				}
			}
			close(done)
		}()
		b.ResetTimer()
		start := time.Now()
		for i := range b.N {
			p.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("key-" + strconv.Itoa(i%100)),
				Value: sarama.ByteEncoder(value), Headers: []sarama.RecordHeader{{Key: []byte("ce_type"), Value: []byte("bench")}}}
		}
		<-done
		reportRate(b, b.N, time.Since(start))
	})
	for _, g := range []struct{ goroutines, batch int }{{1, 1}, {64, 1}, {1, 100}, {64, 100}, {256, 100}} {
		b.Run(fmt.Sprintf("kafkabus/goroutines=%d/batch=%d", g.goroutines, g.batch), func(b *testing.B) {
			_, kb, topic := benchCluster(b)
			var next atomic.Int64
			ctx := context.Background()
			n := b.N
			if g.goroutines*g.batch == 1 {
				n = min(n, 5000) // one message in flight: about 1,000 msgs/s, so cap the run
			}
			b.ResetTimer()
			start := time.Now()
			var wg sync.WaitGroup
			for range g.goroutines {
				wg.Go(func() {
					batch := make([]*broker.Message, 0, g.batch)
					for {
						first := next.Add(int64(g.batch)) - int64(g.batch)
						if first >= int64(n) {
							return
						}
						batch = batch[:0]
						for i := first; i < min(first+int64(g.batch), int64(n)); i++ {
							batch = append(batch, &broker.Message{Topic: topic, Key: "key-" + strconv.Itoa(int(i%100)), Body: value,
								Headers: broker.Headers{{Key: "ce_type", Value: "bench"}}})
						}
						if err := kb.Publish(ctx, batch...); err != nil {
							b.Error(err)
							return
						}
					}
				})
			}
			wg.Wait()
			reportRate(b, n, time.Since(start))
		})
	}
}

// fill publishes n messages to topic with the raw producer, as fast as it
// can.
func fill(b testing.TB, c *kafkatest.Cluster, topic string, n int) {
	b.Helper()
	fillAddrs(b, c.Addrs(), topic, n)
}

func fillAddrs(b testing.TB, addrs []string, topic string, n int) {
	b.Helper()
	p, err := sarama.NewAsyncProducer(addrs, rawProducerConfig())
	if err != nil {
		b.Fatal(err)
	}
	value := benchValue()
	go func() {
		for i := range n {
			p.Input() <- &sarama.ProducerMessage{Topic: topic, Key: sarama.StringEncoder("key-" + strconv.Itoa(i%100)),
				Value: sarama.ByteEncoder(value), Headers: benchHeaders(i)}
		}
	}()
	for range n {
		select {
		case <-p.Successes():
		case err := <-p.Errors():
			b.Fatal(err)
		}
	}
	_ = p.Close()
}

// benchHeaders are the nine CloudEvents headers a Bus writes, with the
// per-message ones (id, time, subject, correlation id) varying.
func benchHeaders(i int) []sarama.RecordHeader {
	h := func(k, v string) sarama.RecordHeader { return sarama.RecordHeader{Key: []byte(k), Value: []byte(v)} }
	id := fmt.Sprintf("0193a1b2-c3d4-7e5f-8a9b-%012d", i)
	return []sarama.RecordHeader{
		h(broker.HeaderSpecVersion, "1.0"), h(broker.HeaderID, id), h(broker.HeaderType, "job.metrics"),
		h(broker.HeaderSource, "bench"), h(broker.HeaderTime, time.Unix(int64(1_765_000_000+i), 0).UTC().Format("2006-01-02T15:04:05.000Z07:00")),
		h(broker.HeaderSubject, "job-"+strconv.Itoa(i%100)), h(broker.HeaderCorrelationID, id),
		h(broker.HeaderDataSchema, "urn:cosmic-horizons:schema:job-metrics/v2"), h(broker.HeaderContentType, "application/avro"),
	}
}

// counter counts handled messages and notes when the first and the n-th
// arrived, so that joining the group is not measured.
type counter struct {
	n           int64
	count       atomic.Int64
	first, last atomic.Int64
	done        chan struct{}
}

func newCounter(n int) *counter { return &counter{n: int64(n), done: make(chan struct{})} }

func (c *counter) hit() {
	k := c.count.Add(1)
	if k == 1 {
		c.first.Store(time.Now().UnixNano())
	}
	if k == c.n {
		c.last.Store(time.Now().UnixNano())
		close(c.done)
	}
}

// rate is the messages per second between the first and the last.
func (c *counter) rate() float64 {
	return float64(c.n) / (float64(c.last.Load()-c.first.Load()) / 1e9)
}

func (c *counter) report(b *testing.B) {
	select {
	case <-c.done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("consumed %d of %d", c.count.Load(), c.n)
	}
	reportRate(b, int(c.n), time.Duration(c.last.Load()-c.first.Load()))
}

type rawGroupHandler struct{ c *counter }

func (rawGroupHandler) Setup(sarama.ConsumerGroupSession) error   { return nil }
func (rawGroupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }
func (h rawGroupHandler) ConsumeClaim(s sarama.ConsumerGroupSession, cl sarama.ConsumerGroupClaim) error {
	for m := range cl.Messages() {
		s.MarkMessage(m, "")
		h.c.hit()
	}
	return nil
}

func BenchmarkConsume(b *testing.B) {
	b.Run("sarama-group", func(b *testing.B) {
		c, _, topic := benchCluster(b)
		fill(b, c, topic, b.N)
		cnt := newCounter(b.N)
		cg, err := sarama.NewConsumerGroup(c.Addrs(), "raw", rawConfig())
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			for ctx.Err() == nil {
				_ = cg.Consume(ctx, []string{topic}, rawGroupHandler{cnt})
			}
		}()
		b.ResetTimer()
		cnt.report(b)
		b.StopTimer()
		cancel()
		<-done
		_ = cg.Close()
	})
	for _, v := range []struct{ conc, window int }{{1, 0}, {8, 0}, {1, 4096}} {
		conc := v.conc
		b.Run(fmt.Sprintf("kafkabus/concurrency=%d/maxinflight=%d", conc, max(v.window, broker.DefaultMaxInFlight)), func(b *testing.B) {
			c, kb, topic := benchCluster(b)
			fill(b, c, topic, b.N)
			cnt := newCounter(b.N)
			b.ResetTimer()
			cons, err := kb.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: "kb", Concurrency: conc, MaxInFlight: v.window},
				func(context.Context, *broker.Message) error { cnt.hit(); return nil })
			if err != nil {
				b.Fatal(err)
			}
			cnt.report(b)
			b.StopTimer()
			_ = cons.Close()
		})
	}
}

// BenchmarkLatency publishes at a paced 5,000 msgs/s (one message per
// Publish, from 32 goroutines) to a subscribed group and reports the P50
// and P99 of the Publish call and of publish→handle. The messages of the
// first second (a tenth of a run shorter than 2 s) are a warm-up, left out
// of the percentiles, as in eventbench: while the consumer's first fetch
// sessions settle, a few hundred messages wait tens of milliseconds, which
// in a 5 s run is the whole 99th percentile.
func BenchmarkLatency(b *testing.B) {
	const rate = 5000
	warm := rate
	if b.N < 2*rate {
		warm = b.N / 10
	}
	_, kb, topic := benchCluster(b)
	value := benchValue()
	var mu sync.Mutex
	e2e := make([]time.Duration, 0, b.N)
	cnt := newCounter(b.N)
	cons, err := kb.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: "lat", Concurrency: 4},
		func(_ context.Context, m *broker.Message) error {
			sent, _ := strconv.ParseInt(m.Header("sent"), 10, 64)
			d := time.Since(time.Unix(0, sent))
			if seq, _ := strconv.Atoi(m.Header("seq")); seq >= warm {
				mu.Lock()
				e2e = append(e2e, d)
				mu.Unlock()
			}
			cnt.hit()
			return nil
		})
	if err != nil {
		b.Fatal(err)
	}
	defer cons.Close()
	work := make(chan int, 1024)
	pubLat := make([]time.Duration, b.N)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := range work {
				m := &broker.Message{Topic: topic, Key: "key-" + strconv.Itoa(i%100), Body: value,
					Headers: broker.Headers{{Key: "sent", Value: strconv.FormatInt(time.Now().UnixNano(), 10)}, {Key: "seq", Value: strconv.Itoa(i)}}}
				start := time.Now()
				if err := kb.Publish(context.Background(), m); err != nil {
					b.Error(err)
				}
				pubLat[i] = time.Since(start)
			}
		})
	}
	b.ResetTimer()
	tick := time.NewTicker(time.Millisecond)
	start := time.Now()
	for i := 0; i < b.N; {
		<-tick.C
		due := min(int(time.Since(start).Seconds()*rate), b.N)
		for ; i < due; i++ {
			work <- i
		}
	}
	tick.Stop()
	close(work)
	wg.Wait()
	cnt.report(b)
	b.StopTimer()
	pubLat = pubLat[warm:]
	slices.Sort(pubLat)
	mu.Lock()
	slices.Sort(e2e)
	mu.Unlock()
	pct := func(ds []time.Duration, p float64) float64 {
		return float64(ds[min(int(float64(len(ds))*p), len(ds)-1)].Microseconds()) / 1000
	}
	b.ReportMetric(pct(pubLat, 0.50), "publish-p50-ms")
	b.ReportMetric(pct(pubLat, 0.99), "publish-p99-ms")
	b.ReportMetric(pct(e2e, 0.50), "e2e-p50-ms")
	b.ReportMetric(pct(e2e, 0.99), "e2e-p99-ms")
}

// BenchmarkConsumeVsSarama consumes b.N messages (300-byte values, the
// nine CloudEvents headers a Bus writes) with raw sarama and with kafkabus
// (defaults, a handler that does nothing), arms alternated, five
// repetitions each on fresh clusters, and reports the median rate of each,
// the client's CPU time per message, and the ratios. The cluster runs in a
// child process (kafkatest.StartProcess): in this process its heap (every
// message of the topic) would make the client's garbage collection, and so
// both arms' figures, swing by a factor of two from run to run.
func BenchmarkConsumeVsSarama(b *testing.B) {
	const reps = 5
	var raw, kb, rawCPU, kbCPU []float64
	for range reps {
		r, c := consumeRaw(b, b.N)
		raw, rawCPU = append(raw, r), append(rawCPU, c)
		r, c = consumeKafkabus(b, b.N)
		kb, kbCPU = append(kb, r), append(kbCPU, c)
	}
	med := func(xs []float64) float64 { slices.Sort(xs); return xs[len(xs)/2] }
	b.ReportMetric(med(raw), "sarama-msgs/s")
	b.ReportMetric(med(kb), "kafkabus-msgs/s")
	b.ReportMetric(med(kb)/med(raw), "ratio")
	b.ReportMetric(med(rawCPU), "sarama-cpu-ns/msg")
	b.ReportMetric(med(kbCPU), "kafkabus-cpu-ns/msg")
	b.ReportMetric(med(rawCPU)/med(kbCPU), "cpu-ratio")
}

// cpuTime is the process's user+system CPU time so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// remoteCluster starts a cluster in a child process, a backend on it and
// a fresh topic filled with n messages.
func remoteCluster(b *testing.B, n int) (*kafkatest.Process, *kafkabus.Backend, string) {
	b.Helper()
	exe, err := os.Executable()
	if err != nil {
		b.Fatal(err)
	}
	p, err := kafkatest.StartProcess(context.Background(), exe)
	if err != nil {
		b.Fatal(err)
	}
	cfg := kafkabus.Config{Brokers: p.Brokers, ClientID: "bench", SessionTimeout: 6 * time.Second,
		HeartbeatInterval: 500 * time.Millisecond, RebalanceTimeout: 5 * time.Second, RetryBackoff: 50 * time.Millisecond}
	kb, err := kafkabus.New(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	topic := newTopic(b, kb, "bench", benchPartitions)
	fillAddrs(b, p.Brokers, topic, n)
	return p, kb, topic
}

func consumeRaw(b *testing.B, n int) (rate, cpuPerMsg float64) {
	p, kb, topic := remoteCluster(b, n)
	defer p.Close()
	defer kb.Close()
	cnt := newCounter(n)
	cpu0 := cpuTime()
	cg, err := sarama.NewConsumerGroup(p.Brokers, "raw", rawConfig())
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			_ = cg.Consume(ctx, []string{topic}, rawGroupHandler{cnt})
		}
	}()
	<-cnt.done
	cpu := cpuTime() - cpu0
	cancel()
	<-done
	_ = cg.Close()
	return cnt.rate(), float64(cpu.Nanoseconds()) / float64(n)
}

func consumeKafkabus(b *testing.B, n int) (rate, cpuPerMsg float64) {
	p, kb, topic := remoteCluster(b, n)
	defer p.Close()
	defer kb.Close()
	cnt := newCounter(n)
	cpu0 := cpuTime()
	cons, err := kb.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: "kb"},
		func(context.Context, *broker.Message) error { cnt.hit(); return nil })
	if err != nil {
		b.Fatal(err)
	}
	<-cnt.done
	cpu := cpuTime() - cpu0
	_ = cons.Close()
	return cnt.rate(), float64(cpu.Nanoseconds()) / float64(n)
}
