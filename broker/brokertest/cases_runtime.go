package brokertest

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

// shortDrain is the DrainTimeout of the subscriptions whose handlers the
// runtime cases hold on purpose.
const shortDrain = 200 * time.Millisecond

// testJoinWhileBusy: a member joins a group while another member's
// handler is busy, and ignores its ctx; the join returns within the busy
// member's DrainTimeout plus the runtime's grace, at every Concurrency, and
// the message the busy handler was abandoned on is handled afterwards.
func testJoinWhileBusy(e *env) {
	if !e.f.ConsumerGroups || e.b.NewSubscriber == nil {
		e.t.Skip("backend does not support consumer groups with a second subscriber")
	}
	for _, conc := range []int{1, 4} {
		e.t.Run("concurrency="+strconv.Itoa(conc), func(t *testing.T) {
			sub := e.sub(t)
			topic := sub.topic("busy")
			group := sub.group("g")
			sub.declareGroup(topic, group)
			var blocked atomic.Bool
			entered := make(chan struct{}, 1)
			busy := make(chan struct{})
			t.Cleanup(func() { close(busy) })
			handled := newCollector()
			h := func(ctx context.Context, m *broker.Message) error {
				if m.Header(hdrSeq) == "100" && blocked.CompareAndSwap(false, true) {
					entered <- struct{}{}
					<-busy // busy, deaf to its ctx
					return nil
				}
				handled.add(m)
				return nil
			}
			cfg := broker.Subscription{Topic: topic, Group: group, Concurrency: conc, DrainTimeout: shortDrain}
			sub.subscribe(nil, cfg, h)
			pctx, cancel := context.WithTimeout(context.Background(), sub.f.Timeout)
			defer cancel()
			if err := sub.b.Publisher.Publish(pctx, msg(topic, "key-0", 100, []byte("busy"))); err != nil {
				t.Fatalf("Publish: %v", err)
			}
			select {
			case <-entered:
			case <-time.After(sub.f.Timeout):
				t.Fatal("the first member's handler was not called")
			}
			other := e.b.NewSubscriber(t)
			joined := make(chan error, 1)
			go func() {
				c, err := other.Subscribe(context.Background(), cfg, h)
				if err == nil {
					t.Cleanup(func() { _ = c.Close() })
				}
				joined <- err
			}()
			select {
			case err := <-joined:
				if err != nil {
					t.Fatalf("the joining member's Subscribe: %v", err)
				}
			case <-time.After(sub.f.Timeout):
				t.Fatalf("the joining member's Subscribe still blocked after %v behind a busy handler (DrainTimeout %v)", sub.f.Timeout, shortDrain)
			}
			if !sub.f.KeyAffinity {
				// Competing consumers: nothing moves from the busy member,
				// which keeps its message (and the key's next ones).
				return
			}
			sub.publishN(topic, 5, 1)
			handled.waitCount(t, sub.f.Timeout, 5)
			// The busy member let its partition go: the message its handler
			// was abandoned on is handled again by the group.
			handled.waitUntil(t, sub.f.Timeout, "message 100 handled again after it was abandoned", func(ms []*broker.Message) bool {
				return distinct(ms)["100"] > 0
			})
		})
	}
}

// testIgnoresCtx: a handler that ignores its ctx is waited for
// DrainTimeout, then (its ctx cancelled) for the runtime's grace, then
// abandoned: Close returns, and its message is left for redelivery.
func testIgnoresCtx(e *env) {
	topic := e.topic("ignores-ctx")
	group := e.group("g")
	e.declareGroup(topic, group)
	stuck := make(chan struct{})
	e.t.Cleanup(func() { close(stuck) })
	entered := make(chan struct{}, 1)
	var first atomic.Bool
	h := func(ctx context.Context, m *broker.Message) error {
		if first.CompareAndSwap(false, true) {
			entered <- struct{}{}
			<-stuck // ignores ctx
		}
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cons, err := e.b.Subscriber.Subscribe(ctx, broker.Subscription{Topic: topic, Group: group, DrainTimeout: shortDrain}, h)
	if err != nil {
		e.t.Fatalf("Subscribe: %v", err)
	}
	e.publishN(topic, 1, 1)
	select {
	case <-entered:
	case <-time.After(e.f.Timeout):
		e.t.Fatal("the handler was not called")
	}
	if err := e.closeWithin(cons); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
	if !e.f.Persistent {
		return
	}
	again := newCollector()
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: group}, again.handler)
	got := again.waitCount(e.t, e.f.Timeout, 1)
	if got[0].Header(hdrSeq) != "0" {
		e.t.Fatalf("after the abandoned handler, the group resumed at %s, want message 0 again", got[0].Header(hdrSeq))
	}
}

// testUnkeyedSpread: messages without a key are spread over the workers:
// with Concurrency 4, four of them are handled at once.
func testUnkeyedSpread(e *env) {
	const workers = 4
	topic := e.topic("unkeyed")
	group := e.group("g")
	e.declareGroup(topic, group)
	var mu sync.Mutex
	active, peak := 0, 0
	all := make(chan struct{})
	var once sync.Once
	h := func(ctx context.Context, m *broker.Message) error {
		mu.Lock()
		active++
		peak = max(peak, active)
		if active == workers {
			once.Do(func() { close(all) })
		}
		mu.Unlock()
		select {
		case <-all:
		case <-ctx.Done():
		case <-time.After(e.f.Timeout):
		}
		mu.Lock()
		active--
		mu.Unlock()
		return nil
	}
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: group, Concurrency: workers}, h)
	ctx, cancel := context.WithTimeout(context.Background(), e.f.Timeout)
	defer cancel()
	var msgs []*broker.Message
	for i := range 2 * workers {
		msgs = append(msgs, msg(topic, "", i, []byte("unkeyed")))
	}
	if err := e.b.Publisher.Publish(ctx, msgs...); err != nil {
		e.t.Fatalf("Publish: %v", err)
	}
	select {
	case <-all:
	case <-ctx.Done():
		mu.Lock()
		defer mu.Unlock()
		e.t.Fatalf("at most %d unkeyed messages were handled at once with Concurrency %d", peak, workers)
	}
}

// sub returns an env for a subtest: the same backend, names unique to t,
// cleaned up with t.
func (e *env) sub(t *testing.T) *env {
	s := &env{t: t, f: e.f, b: e.b, prefix: fmt.Sprintf("%s-%d", e.prefix, subSeq.Add(1))}
	t.Cleanup(func() {
		if s.f.Cleanup != nil {
			s.f.Cleanup(t, s.topics, s.groups)
		}
	})
	return s
}

var subSeq atomic.Int64
