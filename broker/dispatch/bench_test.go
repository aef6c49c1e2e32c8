package dispatch_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/dispatch"
)

// BenchmarkRuntime measures the runtime's cost per message as a backend
// sees it: deliveries taken from NewDelivery and filled (key, three
// headers), handed out in batches of 64, through a handler that does
// nothing, committed as a Kafka partition is. ns/op is per message.
func BenchmarkRuntime(b *testing.B) {
	for _, conc := range []int{1, 8} {
		b.Run("concurrency="+strconv.Itoa(conc), func(b *testing.B) {
			var handled atomic.Int64
			done := make(chan struct{})
			n := int64(b.N)
			rt, err := dispatch.New(context.Background(), dispatch.Config{
				Subscription: broker.Subscription{Topic: "t", Group: "g", Concurrency: conc},
				Handler: func(context.Context, *broker.Message) error {
					if handled.Add(1) == n {
						close(done)
					}
					return nil
				},
				Pipeline: broker.Pipeline{DeadLetters: discardPublisher{}},
			})
			if err != nil {
				b.Fatal(err)
			}
			var committed atomic.Int64
			p := rt.Open(dispatch.PartitionConfig{Commit: func(next int64) { committed.Store(next) }})
			now := time.Now()
			keys := make([]string, 100)
			for i := range keys {
				keys[i] = "key-" + strconv.Itoa(i)
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i += 64 {
				ds := dispatch.NewBatch()
				for j := range min(64, b.N-i) {
					pos := int64(i + j)
					d := p.NewDelivery()
					d.Pos = pos
					m := &d.Message
					m.Topic, m.Key = "t", keys[pos%100]
					m.Headers = append(m.Headers, broker.Header{Key: "ce_type", Value: "bench"}, broker.Header{Key: "ce_source", Value: "bench"},
						broker.Header{Key: "content-type", Value: "application/avro"})
					m.Delivery = broker.Delivery{Offset: pos, Attempt: 1, ReceivedAt: now}
					ds = append(ds, d)
				}
				p.Deliver(ds)
			}
			<-done
			b.StopTimer()
			p.Close(time.Minute)
			rt.Finish(nil)
		})
	}
}
