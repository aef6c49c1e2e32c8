package dispatch_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/dispatch"
)

const waitTimeout = 10 * time.Second

// commits records the positions a partition committed, in call order.
type commits struct {
	mu  sync.Mutex
	pos []int64
}

func (c *commits) commit(next int64) {
	c.mu.Lock()
	c.pos = append(c.pos, next)
	c.mu.Unlock()
}

func (c *commits) last() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.pos) == 0 {
		return -1
	}
	return c.pos[len(c.pos)-1]
}

func (c *commits) all() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.pos)
}

// deliveries builds n messages of a partition from position from, keys
// round-robin over keys ("" for none).
func deliveries(topic string, from, n, keys int) []*dispatch.Delivery {
	ds := make([]*dispatch.Delivery, n)
	now := time.Now()
	for i := range ds {
		pos := int64(from + i)
		key := ""
		if keys > 0 {
			key = "k" + strconv.Itoa(int(pos)%keys)
		}
		ds[i] = &dispatch.Delivery{Pos: pos, Message: broker.Message{Topic: topic, Key: key, Body: []byte(strconv.Itoa(int(pos))),
			Delivery: broker.Delivery{Partition: 0, Offset: pos, Attempt: 1, ReceivedAt: now}}}
	}
	return ds
}

func newRuntime(t *testing.T, sub broker.Subscription, h broker.Handler, grace time.Duration) *dispatch.Runtime {
	t.Helper()
	if sub.Topic == "" {
		sub.Topic, sub.Group = "t", "g"
	}
	if sub.Retry.MaxAttempts == 0 {
		sub.Retry.MaxAttempts = 1
	}
	rt, err := dispatch.New(context.Background(), dispatch.Config{Subscription: sub, Handler: h, Grace: grace,
		Pipeline: broker.Pipeline{DeadLetters: discardPublisher{}}})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

type discardPublisher struct{}

func (discardPublisher) Publish(context.Context, ...*broker.Message) error { return nil }
func (discardPublisher) Close() error                                      { return nil }

// eventually polls cond until it holds, failing the test after
// waitTimeout.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		<-tick.C
	}
}

func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { fn(); close(done) }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// TestOrderPerKeyAndWatermark: with 8 workers and random handler times,
// each key's messages are handled in order, and the committed position
// only ever grows and ends past the last message.
func TestOrderPerKeyAndWatermark(t *testing.T) {
	var mu sync.Mutex
	last := map[string]int{}
	var violations atomic.Int32
	h := func(_ context.Context, m *broker.Message) error {
		time.Sleep(time.Duration(rand.IntN(200)) * time.Microsecond) // uneven work, not synchronisation
		n, _ := strconv.Atoi(string(m.Body))
		mu.Lock()
		if prev, ok := last[m.Key]; ok && n <= prev {
			violations.Add(1)
		}
		last[m.Key] = n
		mu.Unlock()
		return nil
	}
	rt := newRuntime(t, broker.Subscription{Concurrency: 8, MaxInFlight: 64}, h, 0)
	var cm commits
	p := rt.Open(dispatch.PartitionConfig{Commit: cm.commit})
	const n = 2000
	for i := 0; i < n; i += 50 {
		if got := p.Deliver(deliveries("t", i, 50, 16)); got != 50 {
			t.Fatalf("Deliver handed out %d of 50", got)
		}
	}
	rel := p.Close(waitTimeout)
	rt.Finish(nil)
	if v := violations.Load(); v != 0 {
		t.Fatalf("%d messages handled out of order for their key", v)
	}
	if rel.Committed != n || cm.last() != n || rel.LastHandedOut != n-1 {
		t.Fatalf("committed %d (last Commit %d), last handed out %d; want %d, %d, %d", rel.Committed, cm.last(), rel.LastHandedOut, n, n, n-1)
	}
	if all := cm.all(); !slices.IsSorted(all) {
		t.Fatalf("commits went backwards: %v", all)
	}
	if err := rt.Close(); err != nil {
		t.Fatalf("Close after a clean stop: %v", err)
	}
}

// TestWatermarkNeverPassesUnfinished: message 1 is slow; the others
// finish; the commit stays at 1 until it finishes.
func TestWatermarkNeverPassesUnfinished(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{})
	h := func(ctx context.Context, m *broker.Message) error {
		if string(m.Body) == "1" {
			close(entered)
			<-release
		}
		return nil
	}
	// Unkeyed messages go round-robin: one per worker, so nothing waits
	// behind message 1.
	rt := newRuntime(t, broker.Subscription{Concurrency: 20}, h, 0)
	var cm commits
	p := rt.Open(dispatch.PartitionConfig{Commit: cm.commit})
	p.Deliver(deliveries("t", 0, 20, 0))
	<-entered
	eventually(t, "only the slow message in flight", func() bool { n, _ := rt.InFlight(); return n == 1 })
	if last := cm.last(); last > 1 {
		t.Fatalf("committed %d while message 1 was unfinished", last)
	}
	close(release)
	rel := p.Close(waitTimeout)
	rt.Finish(nil)
	if rel.Committed != 20 {
		t.Fatalf("committed %d, want 20", rel.Committed)
	}
}

// TestInFlightBound: with handlers blocked, Deliver hands out MaxInFlight
// messages and waits for room for the next.
func TestInFlightBound(t *testing.T) {
	release := make(chan struct{})
	var running atomic.Int32
	h := func(ctx context.Context, m *broker.Message) error {
		running.Add(1)
		<-release
		return nil
	}
	rt := newRuntime(t, broker.Subscription{Concurrency: 8, MaxInFlight: 4}, h, 0)
	p := rt.Open(dispatch.PartitionConfig{})
	if got := p.Deliver(deliveries("t", 0, 4, 0)); got != 4 {
		t.Fatalf("handed out %d of 4", got)
	}
	handed := make(chan int, 1)
	go func() { handed <- p.Deliver(deliveries("t", 4, 1, 0)) }()
	select {
	case n := <-handed:
		t.Fatalf("Deliver beyond MaxInFlight returned %d without waiting", n)
	case <-time.After(50 * time.Millisecond): // lets a wrong Deliver return; the pass does not depend on it
	}
	close(release)
	select {
	case n := <-handed:
		if n != 1 {
			t.Fatalf("handed out %d once room was made, want 1", n)
		}
	case <-time.After(waitTimeout):
		t.Fatal("Deliver did not resume once handlers finished")
	}
	p.Close(waitTimeout)
	rt.Finish(nil)
}

// TestUnkeyedSpreadOverWorkers: messages without a key reach every worker.
func TestUnkeyedSpreadOverWorkers(t *testing.T) {
	const workers = 4
	var mu sync.Mutex
	concurrent, peak := 0, 0
	gate := make(chan struct{})
	var arrived atomic.Int32
	h := func(ctx context.Context, m *broker.Message) error {
		mu.Lock()
		concurrent++
		peak = max(peak, concurrent)
		mu.Unlock()
		if arrived.Add(1) == workers {
			close(gate)
		}
		select {
		case <-gate:
		case <-time.After(waitTimeout):
		}
		mu.Lock()
		concurrent--
		mu.Unlock()
		return nil
	}
	rt := newRuntime(t, broker.Subscription{Concurrency: workers}, h, 0)
	p := rt.Open(dispatch.PartitionConfig{})
	p.Deliver(deliveries("t", 0, workers, 0))
	p.Close(2 * waitTimeout)
	rt.Finish(nil)
	if peak != workers {
		t.Fatalf("at most %d unkeyed messages ran at once, want %d (one per worker)", peak, workers)
	}
}

// TestDrainDeadlineCancels: a closing partition waits for its handlers up
// to the drain timeout, then cancels their ctx; the message is not
// committed and the messages queued behind it are not started.
func TestDrainDeadlineCancels(t *testing.T) {
	entered := make(chan struct{}, 1)
	var started atomic.Int32
	h := func(ctx context.Context, m *broker.Message) error {
		started.Add(1)
		select {
		case entered <- struct{}{}:
		default:
		}
		<-ctx.Done()
		return ctx.Err()
	}
	rt := newRuntime(t, broker.Subscription{}, h, time.Second)
	var cm commits
	p := rt.Open(dispatch.PartitionConfig{Commit: cm.commit})
	p.Deliver(deliveries("t", 0, 3, 1))
	<-entered
	var rel dispatch.Released
	within(t, waitTimeout, "Close", func() { rel = p.Close(20 * time.Millisecond) })
	rt.Finish(nil)
	if rel.Committed > 0 || rel.Abandoned != 0 {
		t.Fatalf("released %+v: want nothing committed past 0, nothing abandoned", rel)
	}
	if n := started.Load(); n != 1 {
		t.Fatalf("%d handlers started, want 1 (the others were queued at the deadline)", n)
	}
}

// TestHandlerIgnoringCtxIsAbandoned: past the drain timeout and the
// grace, a handler that ignores its ctx is abandoned: Close returns, the
// message is left uncommitted, another partition's keys on the same
// worker go on, and InFlight shows the abandoned handler until it returns.
func TestHandlerIgnoringCtxIsAbandoned(t *testing.T) {
	stuck := make(chan struct{})
	entered := make(chan struct{})
	h := func(ctx context.Context, m *broker.Message) error {
		if m.Topic == "stuck" {
			close(entered)
			<-stuck // ignores ctx
		}
		return nil
	}
	rt := newRuntime(t, broker.Subscription{Concurrency: 1}, h, 30*time.Millisecond)
	var cmA, cmB commits
	a := rt.Open(dispatch.PartitionConfig{Commit: cmA.commit})
	b := rt.Open(dispatch.PartitionConfig{Commit: cmB.commit})
	a.Deliver(deliveries("stuck", 0, 1, 1))
	<-entered
	// One worker: b's messages queue behind the stuck handler.
	if got := b.Deliver(deliveries("other", 0, 5, 1)); got != 5 {
		t.Fatalf("handed out %d", got)
	}
	var rel dispatch.Released
	within(t, waitTimeout, "Close of the stuck partition", func() { rel = a.Close(20 * time.Millisecond) })
	if rel.Abandoned != 1 || rel.Committed > 0 {
		t.Fatalf("released %+v, want one abandoned handler and nothing committed", rel)
	}
	if n, oldest := rt.InFlight(); n < 1 || oldest.IsZero() {
		t.Fatalf("InFlight = %d, %v; want the abandoned handler shown", n, oldest)
	}
	// The replaced worker carries on with b.
	relB := b.Close(waitTimeout)
	if relB.Committed != 5 {
		t.Fatalf("the other partition committed %d, want 5: its messages waited behind the abandoned handler", relB.Committed)
	}
	within(t, waitTimeout, "Finish", func() { rt.Finish(nil) })
	close(stuck)
	eventually(t, "the abandoned handler gone from InFlight once it returned", func() bool { n, _ := rt.InFlight(); return n == 0 })
}

// TestStopPolicy: under OnFailureStop a handler error stops the
// subscription with a *HandlerError; nothing queued behind it starts and
// nothing is committed past it.
func TestStopPolicy(t *testing.T) {
	var handled []string
	var mu sync.Mutex
	h := func(ctx context.Context, m *broker.Message) error {
		if string(m.Body) == "1" {
			return errors.New("must not skip")
		}
		mu.Lock()
		handled = append(handled, string(m.Body))
		mu.Unlock()
		return nil
	}
	rt := newRuntime(t, broker.Subscription{OnFailure: broker.OnFailureStop}, h, 0)
	var cm commits
	p := rt.Open(dispatch.PartitionConfig{Commit: cm.commit})
	p.Deliver(deliveries("t", 0, 3, 1))
	select {
	case <-rt.Stopping():
	case <-time.After(waitTimeout):
		t.Fatal("the subscription did not stop")
	}
	rel := p.Close(waitTimeout)
	rt.Finish(nil)
	var he *broker.HandlerError
	if err := rt.Err(); !errors.As(err, &he) || he.Offset != 1 {
		t.Fatalf("Err() = %v, want a *HandlerError at offset 1", err)
	}
	if rel.Committed != 1 {
		t.Fatalf("committed %d, want 1 (message 1 unfinished)", rel.Committed)
	}
	if fmt.Sprint(handled) != "[0]" {
		t.Fatalf("handled %v, want only 0", handled)
	}
}

// TestAckMode: Ack is called once per message whose handler succeeded.
func TestAckMode(t *testing.T) {
	h := func(ctx context.Context, m *broker.Message) error {
		if string(m.Body) == "2" {
			return broker.Permanent(errors.New("bad")) // dead-lettered, then acknowledged
		}
		return nil
	}
	var mu sync.Mutex
	var acked []int64
	rt := newRuntime(t, broker.Subscription{Concurrency: 3}, h, 0)
	p := rt.Open(dispatch.PartitionConfig{Ack: func(pos int64) { mu.Lock(); acked = append(acked, pos); mu.Unlock() }})
	p.Deliver(deliveries("t", 1, 5, 5))
	p.Close(waitTimeout)
	rt.Finish(nil)
	slices.Sort(acked)
	if fmt.Sprint(acked) != "[1 2 3 4 5]" {
		t.Fatalf("acked %v, want every message once", acked)
	}
}

// TestCloseStopsFetching: Close closes Stopping, and returns once the
// backend called Finish, with the error it passed.
func TestCloseStopsFetching(t *testing.T) {
	rt := newRuntime(t, broker.Subscription{}, func(context.Context, *broker.Message) error { return nil }, 0)
	backendErr := errors.New("connection lost for good")
	go func() {
		<-rt.Stopping()
		rt.Finish(backendErr)
	}()
	var err error
	within(t, waitTimeout, "Close", func() { err = rt.Close() })
	if !errors.Is(err, backendErr) {
		t.Fatalf("Close = %v, want the backend's error", err)
	}
	if rt.Close() == nil {
		t.Fatal("a second Close lost the error")
	}
}

// TestContextCancelStops: cancelling New's ctx stops the subscription.
func TestContextCancelStops(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	rt, err := dispatch.New(ctx, dispatch.Config{Subscription: broker.Subscription{Topic: "t", Group: "g"},
		Handler: func(context.Context, *broker.Message) error { return nil }})
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-rt.Stopping():
	case <-time.After(waitTimeout):
		t.Fatal("cancelling ctx did not stop the subscription")
	}
	rt.Finish(nil)
}

func TestInvalidSubscription(t *testing.T) {
	_, err := dispatch.New(context.Background(), dispatch.Config{Subscription: broker.Subscription{}, Handler: func(context.Context, *broker.Message) error { return nil }})
	if !errors.Is(err, broker.ErrInvalidSubscription) {
		t.Fatalf("err = %v", err)
	}
	_, err = dispatch.New(context.Background(), dispatch.Config{Subscription: broker.Subscription{Topic: "t", Group: "g"}})
	if !errors.Is(err, broker.ErrInvalidSubscription) {
		t.Fatalf("nil handler: err = %v", err)
	}
}
