package rabbitbus_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/rabbitbus"
	"github.com/cosmic-horizons/events/testkit"
)

// The benchmarks compare rabbitbus with the raw amqp091 client on the same
// topology (a durable topic exchange and a quorum queue bound with "#"),
// 300-byte bodies, the local broker. Run them with a fixed count so that
// queues stay small and runs compare, e.g.
//
//	go test ./rabbitbus/ -run '^$' -bench . -benchtime 20000x -count 3
//
// Each reports msgs/s (and, for latency, p50/p99 publish→handle in ms).

const benchBodySize = 300

// benchTopic declares a topic with one durable group through admin and
// returns the topic and the group's queue; both are deleted when b ends.
func benchTopic(b *testing.B, e *testEnv, name string) (topic, queue string) {
	b.Helper()
	topic = e.f.Name(name)
	e.declareGroup(b, broker.Subscription{Topic: topic, Group: "g"})
	return topic, e.admin.QueueName(topic, "g")
}

func benchBody() []byte {
	body := make([]byte, benchBodySize)
	_, _ = rand.Read(body)
	return body
}

func benchMessage(topic string, i int, body []byte) *broker.Message {
	return &broker.Message{Topic: topic, Key: "k" + strconv.Itoa(i%64), Body: body, Headers: broker.Headers{
		{Key: broker.HeaderType, Value: "bench.event"},
		{Key: broker.HeaderID, Value: strconv.Itoa(i)},
	}}
}

// rawPublishing is what rabbitbus puts on the wire for benchMessage, for
// the raw client to send the same bytes.
func rawPublishing(i int, body []byte) amqp.Publishing {
	return amqp.Publishing{DeliveryMode: amqp.Persistent, Body: body, MessageId: strconv.Itoa(i), Type: "bench.event",
		Headers: amqp.Table{"cloudEvents_type": "bench.event", "cloudEvents_id": strconv.Itoa(i), rabbitbus.HeaderKey: "k" + strconv.Itoa(i%64)}}
}

func reportRate(b *testing.B, n int, d time.Duration) {
	b.ReportMetric(float64(n)/d.Seconds(), "msgs/s")
}

// cpuTime is the process's user+system CPU time so far: the client's, as
// the broker runs in a process of its own.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func reportCPU(b *testing.B, n int, cpu time.Duration) {
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(n), "cpu-ns/msg")
}

// BenchmarkPublish: confirmed publishing. raw/window-N is amqp091 on one
// channel with deferred confirmations and up to N unconfirmed; rabbitbus
// is Publish, one message per call unless batched, so G goroutines keep at
// most G messages unconfirmed (compare with raw/window-G).
func BenchmarkPublish(b *testing.B) {
	e := newEnv(b)
	body := benchBody()
	for _, window := range []int{1, 64, 1000} {
		b.Run(fmt.Sprintf("raw/window-%d", window), func(b *testing.B) {
			topic, _ := benchTopic(b, e, "bench-pub-raw")
			ch, err := e.f.Dial().Channel()
			if err != nil {
				b.Fatal(err)
			}
			if err := ch.Confirm(false); err != nil {
				b.Fatal(err)
			}
			inflight := make(chan *amqp.DeferredConfirmation, window)
			wait := func(dc *amqp.DeferredConfirmation) {
				if !dc.Wait() {
					b.Fatal("nacked")
				}
			}
			start, cpu0 := time.Now(), cpuTime()
			b.ResetTimer()
			for i := range b.N {
				if len(inflight) == cap(inflight) {
					wait(<-inflight)
				}
				dc, err := ch.PublishWithDeferredConfirm(topic, "bench.event", true, false, rawPublishing(i, body))
				if err != nil {
					b.Fatal(err)
				}
				inflight <- dc
			}
			for len(inflight) > 0 {
				wait(<-inflight)
			}
			b.StopTimer()
			reportRate(b, b.N, time.Since(start))
			reportCPU(b, b.N, cpuTime()-cpu0)
		})
	}
	run := func(name string, goroutines, batch int) {
		b.Run(name, func(b *testing.B) {
			topic, _ := benchTopic(b, e, "bench-pub")
			c := newClient(b, rabbitbus.Config{URLs: []string{e.url}})
			ctx := context.Background()
			var next atomic.Int64
			var wg sync.WaitGroup
			start, cpu0 := time.Now(), cpuTime()
			b.ResetTimer()
			for range goroutines {
				wg.Add(1)
				go func() {
					defer wg.Done()
					msgs := make([]*broker.Message, 0, batch)
					for {
						first := int(next.Add(int64(batch))) - batch
						if first >= b.N {
							return
						}
						msgs = msgs[:0]
						for i := first; i < min(first+batch, b.N); i++ {
							msgs = append(msgs, benchMessage(topic, i, body))
						}
						if err := c.Publish(ctx, msgs...); err != nil {
							b.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			reportRate(b, b.N, time.Since(start))
			reportCPU(b, b.N, cpuTime()-cpu0)
		})
	}
	run("rabbitbus/1-goroutine", 1, 1)
	run("rabbitbus/1-goroutine-batch-100", 1, 100)
	run("rabbitbus/1-goroutine-batch-1000", 1, 1000)
	run("rabbitbus/64-goroutines", 64, 1)
	run("rabbitbus/256-goroutines", 256, 1)
}

// prefill publishes n messages to topic with c, in batches.
func prefill(b *testing.B, c *rabbitbus.Backend, topic string, n int, body []byte) {
	b.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	const batch = 500
	for first := 0; first < n; first += batch {
		wg.Add(1)
		go func() {
			defer wg.Done()
			msgs := make([]*broker.Message, 0, batch)
			for i := first; i < min(first+batch, n); i++ {
				msgs = append(msgs, benchMessage(topic, i, body))
			}
			if err := c.Publish(ctx, msgs...); err != nil {
				b.Error(err)
			}
		}()
		if first%(8*batch) == 0 {
			wg.Wait() // bounded concurrency
		}
	}
	wg.Wait()
}

// BenchmarkConsume: consuming a backlog with manual acks, prefetch 500.
// raw is one goroutine acking each delivery; rabbitbus runs the full
// pipeline (retry, dead-letter wrapper, key-sharded workers).
func BenchmarkConsume(b *testing.B) {
	e := newEnv(b)
	body := benchBody()
	pub := newClient(b, rabbitbus.Config{URLs: []string{e.url}})
	b.Run("raw/prefetch-500", func(b *testing.B) {
		topic, queue := benchTopic(b, e, "bench-con-raw")
		prefill(b, pub, topic, b.N, body)
		ch, err := e.f.Dial().Channel()
		if err != nil {
			b.Fatal(err)
		}
		start := time.Now()
		b.ResetTimer()
		if err := ch.Qos(500, 0, false); err != nil {
			b.Fatal(err)
		}
		ds, err := ch.Consume(queue, "bench", false, false, false, false, nil)
		if err != nil {
			b.Fatal(err)
		}
		for range b.N {
			d := <-ds
			if err := d.Ack(false); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		reportRate(b, b.N, time.Since(start))
		_ = ch.Close()
	})
	for _, conc := range []int{1, 4} {
		b.Run(fmt.Sprintf("rabbitbus/prefetch-500-concurrency-%d", conc), func(b *testing.B) {
			topic, _ := benchTopic(b, e, "bench-con")
			prefill(b, pub, topic, b.N, body)
			c := newClient(b, rabbitbus.Config{URLs: []string{e.url}})
			var n atomic.Int64
			done := make(chan struct{})
			start := time.Now()
			b.ResetTimer()
			cons, err := c.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: "g", MaxInFlight: 500, Concurrency: conc},
				func(context.Context, *broker.Message) error {
					if n.Add(1) == int64(b.N) {
						close(done)
					}
					return nil
				})
			if err != nil {
				b.Fatal(err)
			}
			<-done
			b.StopTimer()
			reportRate(b, b.N, time.Since(start))
			_ = cons.Close()
		})
	}
}

// BenchmarkLatency: publish→handle latency at a paced rate (b.N messages;
// -benchtime 5000x at 1000/s is 5 s). The publish timestamp travels in a
// header; 16 goroutines publish one message per call as the pacer releases
// them. raw uses amqp091 on both sides (one confirm channel shared by the
// publishers, one consumer acking each delivery).
func BenchmarkLatency(b *testing.B) {
	e := newEnv(b)
	body := benchBody()
	for _, rate := range []int{1000, 5000} {
		b.Run(fmt.Sprintf("rabbitbus/%d-per-s", rate), func(b *testing.B) {
			topic, _ := benchTopic(b, e, "bench-lat")
			c := newClient(b, rabbitbus.Config{URLs: []string{e.url}})
			lm := testkit.NewLatencyMeasurer()
			var n atomic.Int64
			done := make(chan struct{})
			if _, err := c.Subscribe(context.Background(), broker.Subscription{Topic: topic, Group: "g", MaxInFlight: 500, Concurrency: 4},
				func(_ context.Context, m *broker.Message) error {
					sent, _ := strconv.ParseInt(m.Header("x-sent"), 10, 64)
					lm.Record(time.Since(time.Unix(0, sent)))
					if n.Add(1) == int64(b.N) {
						close(done)
					}
					return nil
				}); err != nil {
				b.Fatal(err)
			}
			publish := func(i int) error {
				m := benchMessage(topic, i, body)
				m.SetHeader("x-sent", strconv.FormatInt(time.Now().UnixNano(), 10))
				return c.Publish(context.Background(), m)
			}
			paceRun(b, rate, publish, done)
			reportLatency(b, lm)
		})
		b.Run(fmt.Sprintf("raw/%d-per-s", rate), func(b *testing.B) {
			topic, queue := benchTopic(b, e, "bench-lat-raw")
			conn := e.f.Dial()
			pch, err := conn.Channel()
			if err != nil {
				b.Fatal(err)
			}
			if err := pch.Confirm(false); err != nil {
				b.Fatal(err)
			}
			cch, err := e.f.Dial().Channel()
			if err != nil {
				b.Fatal(err)
			}
			if err := cch.Qos(500, 0, false); err != nil {
				b.Fatal(err)
			}
			ds, err := cch.Consume(queue, "bench", false, false, false, false, nil)
			if err != nil {
				b.Fatal(err)
			}
			lm := testkit.NewLatencyMeasurer()
			done := make(chan struct{})
			go func() {
				for i := 0; i < b.N; i++ {
					d, ok := <-ds
					if !ok {
						return
					}
					sent, _ := d.Headers["x-sent"].(int64)
					lm.Record(time.Since(time.Unix(0, sent)))
					_ = d.Ack(false)
				}
				close(done)
			}()
			publish := func(i int) error {
				p := rawPublishing(i, body)
				p.Headers["x-sent"] = time.Now().UnixNano()
				dc, err := pch.PublishWithDeferredConfirm(topic, "bench.event", true, false, p)
				if err != nil {
					return err
				}
				if !dc.Wait() {
					return fmt.Errorf("nacked")
				}
				return nil
			}
			paceRun(b, rate, publish, done)
			reportLatency(b, lm)
			_ = cch.Close()
		})
	}
}

// paceRun releases b.N publishes at rate per second to 16 publishing
// goroutines, then waits for done (every message handled).
func paceRun(b *testing.B, rate int, publish func(i int) error, done <-chan struct{}) {
	b.Helper()
	work := make(chan int, 1024)
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				if err := publish(i); err != nil {
					b.Error(err)
				}
			}
		}()
	}
	interval := time.Second / time.Duration(rate)
	start := time.Now()
	b.ResetTimer()
	for i := range b.N {
		if d := time.Until(start.Add(time.Duration(i) * interval)); d > 0 {
			time.Sleep(d) // pacing the load, not synchronisation
		}
		work <- i
	}
	close(work)
	wg.Wait()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		b.Fatal("not every message was handled within 60s")
	}
	b.StopTimer()
	reportRate(b, b.N, time.Since(start))
}

func reportLatency(b *testing.B, lm *testkit.LatencyMeasurer) {
	s := lm.Snapshot()
	b.ReportMetric(float64(s.P50.Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(s.P99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(s.Max.Microseconds())/1000, "max-ms")
}
