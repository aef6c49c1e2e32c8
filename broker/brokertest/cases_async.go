package brokertest

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/cosmic-horizons/events/broker"
)

// testAsyncPublish: one goroutine keeps many messages in flight with
// PublishAsync, one message per call. Every done runs exactly once, with
// nil; every message arrives once; and where the backend's hand-off is
// ordered (Features.AsyncOrdered), each key's messages arrive in the order
// of the calls.
func testAsyncPublish(e *env) {
	ap, ok := e.b.Publisher.(broker.AsyncPublisher)
	if !ok {
		e.t.Skip("the Publisher is not a broker.AsyncPublisher")
	}
	topic := e.topic("async")
	keys, total := 10, e.n(1000)
	c := newCollector()
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: e.group("g"), Concurrency: 4}, c.handler)

	ctx, cancel := context.WithTimeout(context.Background(), e.f.Timeout)
	defer cancel()
	calls := make([]atomic.Int32, total)
	var wg sync.WaitGroup
	var failed atomic.Int32
	var firstErr atomic.Value
	perKey := map[string]int{}
	for i := range total {
		key := fmt.Sprintf("key-%d", i%keys)
		m := msg(topic, key, i, []byte(strconv.Itoa(i)))
		m.SetHeader(hdrKeySeq, strconv.Itoa(perKey[key]))
		perKey[key]++
		wg.Add(1)
		err := ap.PublishAsync(ctx, func(err error) {
			if calls[i].Add(1) == 1 {
				defer wg.Done()
			}
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		}, m)
		if err != nil {
			e.t.Fatalf("PublishAsync #%d: %v", i, err)
		}
	}
	wg.Wait()
	if n := failed.Load(); n > 0 {
		e.t.Fatalf("%d of %d completions failed; first: %v", n, total, firstErr.Load())
	}
	msgs := c.waitCount(e.t, e.f.Timeout, total)
	for i := range calls {
		if n := calls[i].Load(); n != 1 {
			e.t.Fatalf("done of message %d ran %d times, want once", i, n)
		}
	}
	seen := distinct(msgs)
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	if len(seen) != total || dups != 0 {
		e.t.Fatalf("%d distinct of %d, %d duplicates", len(seen), total, dups)
	}
	if e.f.AsyncOrdered {
		assertOrdered(e, msgs)
	}
}

// testAsyncPublishRefusals: what PublishAsync refuses it returns, and done
// is never called: an oversized message, a nil done, and any call after
// Close.
func testAsyncPublishRefusals(e *env) {
	ap, ok := e.b.Publisher.(broker.AsyncPublisher)
	if !ok {
		e.t.Skip("the Publisher is not a broker.AsyncPublisher")
	}
	topic := e.topic("asyncno")
	var called atomic.Int32
	done := func(error) { called.Add(1) }
	if err := ap.PublishAsync(context.Background(), nil, msg(topic, "k", 0, []byte("x"))); err == nil {
		e.t.Fatal("PublishAsync with a nil done func = nil, want an error")
	}
	if e.f.MaxMessageBytes > 0 {
		big := msg(topic, "k", 1, make([]byte, e.f.MaxMessageBytes+1))
		if err := ap.PublishAsync(context.Background(), done, big); !errors.Is(err, broker.ErrMessageTooLarge) {
			e.t.Fatalf("PublishAsync of %d bytes = %v, want ErrMessageTooLarge", big.Size(), err)
		}
	}
	if err := e.b.Publisher.Close(); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	if err := ap.PublishAsync(context.Background(), done, msg(topic, "k", 2, []byte("x"))); !errors.Is(err, broker.ErrClosed) {
		e.t.Fatalf("PublishAsync after Close = %v, want ErrClosed", err)
	}
	if n := called.Load(); n != 0 {
		e.t.Fatalf("done ran %d times for refused calls, want never", n)
	}
}
