package brokertest

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

func testRoundTrip(e *env) {
	topic := e.topic("rt")
	group := e.group("g")
	c := newCollector()
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: group}, c.handler)

	body := []byte{0x00, 0xff, 0xfe, 0x80, 'A', 0xc3, 0x28, 0x00, 0x01} // not valid UTF-8, has NULs
	sent := &broker.Message{Topic: topic, Key: "job-ü-1", Body: body, Headers: broker.Headers{
		{Key: broker.HeaderType, Value: "test.roundtrip"},
		{Key: broker.HeaderID, Value: "rt-1"},
		{Key: "x-unicode", Value: "Grüße, 世界 ✓ — \"quoted\""},
		{Key: "x-empty-ish", Value: " "},
		{Key: hdrSeq, Value: "0"},
	}}
	ctx, cancel := context.WithTimeout(context.Background(), e.f.Timeout)
	defer cancel()
	if err := e.b.Publisher.Publish(ctx, sent); err != nil {
		e.t.Fatalf("Publish: %v", err)
	}
	got := c.waitCount(e.t, e.f.Timeout, 1)[0]
	if got.Topic != topic || got.Key != sent.Key || !bytes.Equal(got.Body, body) {
		e.t.Fatalf("got topic %q key %q body %x; sent %q %q %x", got.Topic, got.Key, got.Body, topic, sent.Key, body)
	}
	for _, hdr := range sent.Headers {
		k, v := hdr.Key, hdr.Value
		if got.Headers.Get(k) != v {
			e.t.Errorf("header %q = %q, want %q", k, got.Headers.Get(k), v)
		}
	}
	d := got.Delivery
	if d.Attempt != 1 || d.ReceivedAt.IsZero() || d.Group != group || d.Redelivered {
		e.t.Errorf("delivery info %+v: want Attempt 1, ReceivedAt set, Group %q, not redelivered", d, group)
	}
	if sent.Headers.Get(broker.HeaderID) != "rt-1" || len(sent.Headers) != 5 {
		e.t.Error("Publish modified the message it was given")
	}
}

func testConcurrentPublishers(e *env) {
	topic := e.topic("many")
	publishers, per := 50, e.n(100)
	total := publishers * per
	c := newCollector()
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: e.group("g"), Concurrency: 4}, c.handler)

	ctx, cancel := context.WithTimeout(context.Background(), e.f.Timeout)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, publishers)
	for p := range publishers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range per {
				seq := p*per + i
				m := msg(topic, fmt.Sprintf("p%d-k%d", p, i%7), seq, []byte(fmt.Sprint(seq)))
				if err := e.b.Publisher.Publish(ctx, m); err != nil {
					errs <- fmt.Errorf("publisher %d message %d: %w", p, i, err)
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		e.t.Fatal(err)
	}
	msgs := c.waitCount(e.t, e.f.Timeout, total)
	seen := distinct(msgs)
	dups := 0
	for _, n := range seen {
		dups += n - 1
	}
	if len(seen) != total || dups != 0 {
		e.t.Fatalf("%d publishers × %d: %d distinct of %d, %d duplicates", publishers, per, len(seen), total, dups)
	}
}

func testTopicIsolation(e *env) {
	a, b := e.topic("a"), e.topic("b")
	ca, cb := newCollector(), newCollector()
	e.subscribe(nil, broker.Subscription{Topic: a, Group: e.group("ga")}, ca.handler)
	e.subscribe(nil, broker.Subscription{Topic: b, Group: e.group("gb")}, cb.handler)
	e.publishN(a, 30, 3)
	e.publishN(b, 20, 3)
	ma := ca.waitCount(e.t, e.f.Timeout, 30)
	mb := cb.waitCount(e.t, e.f.Timeout, 20)
	for _, m := range ma {
		if m.Topic != a {
			e.t.Fatalf("subscriber of %s got a message of %s", a, m.Topic)
		}
	}
	for _, m := range mb {
		if m.Topic != b {
			e.t.Fatalf("subscriber of %s got a message of %s", b, m.Topic)
		}
	}
	// Wait for a marker after the data, so a stray late message would show.
	e.publishMarker(b)
	cb.waitUntil(e.t, e.f.Timeout, "marker", hasMarker)
	if n := len(distinct(cb.snapshot())); n != 21 {
		e.t.Fatalf("subscriber of %s saw %d distinct messages, want 20 + marker", b, n)
	}
}

const markerSeq = "marker"

func (e *env) publishMarker(topic string) {
	e.t.Helper()
	m := msg(topic, "marker", 0, []byte("marker"))
	m.SetHeader(hdrSeq, markerSeq)
	ctx, cancel := context.WithTimeout(context.Background(), e.f.Timeout)
	defer cancel()
	if err := e.b.Publisher.Publish(ctx, m); err != nil {
		e.t.Fatalf("Publish marker: %v", err)
	}
}

func hasMarker(ms []*broker.Message) bool {
	for _, m := range ms {
		if m.Header(hdrSeq) == markerSeq {
			return true
		}
	}
	return false
}

func testTwoGroups(e *env) {
	topic := e.topic("groups")
	c1, c2 := newCollector(), newCollector()
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: e.group("g1")}, c1.handler)
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: e.group("g2"), Concurrency: 3}, c2.handler)
	n := e.n(200)
	e.publishN(topic, n, 10)
	for i, c := range []*collector{c1, c2} {
		seen := distinct(c.waitCount(e.t, e.f.Timeout, n))
		if len(seen) != n {
			e.t.Fatalf("group %d saw %d distinct of %d", i+1, len(seen), n)
		}
	}
}

func testMembersSplit(e *env) {
	if !e.f.ConsumerGroups {
		e.t.Skip("backend does not support consumer groups")
	}
	topic := e.topic("split")
	group := e.group("g")
	var other broker.Subscriber
	if e.b.NewSubscriber != nil {
		other = e.b.NewSubscriber(e.t)
	}
	all := newCollector()
	member := func(id string) broker.Handler {
		return func(_ context.Context, m *broker.Message) error {
			m = m.Clone()
			m.SetHeader("bt-member", id)
			all.add(m)
			return nil
		}
	}
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: group}, member("1"))
	e.subscribe(other, broker.Subscription{Topic: topic, Group: group}, member("2"))
	n := e.n(400)
	e.publishN(topic, n, 40)
	msgs := all.waitCount(e.t, e.f.Timeout, n)
	if len(msgs) != n {
		e.t.Errorf("group handled %d messages for %d published: duplicates in steady state", len(msgs), n)
	}
	byMember := map[string]map[string]bool{"1": {}, "2": {}}
	for _, m := range msgs {
		byMember[m.Header("bt-member")][m.Key] = true
	}
	if len(byMember["1"]) == 0 || len(byMember["2"]) == 0 {
		e.t.Fatalf("work not split: member 1 got %d keys, member 2 got %d keys", len(byMember["1"]), len(byMember["2"]))
	}
	if !e.f.KeyAffinity {
		return
	}
	for key := range byMember["2"] {
		if byMember["1"][key] {
			e.t.Fatalf("key %q handled by both members: per-key order across members is lost", key)
		}
	}
}

func testPerKeyOrder(e *env) {
	topic := e.topic("order")
	keys, per := 20, e.n(50)
	c := newCollector()
	var inFlight sync.Map // key → *int32, proves one key is never handled concurrently
	var overlap atomic.Int32
	h := func(ctx context.Context, m *broker.Message) error {
		v, _ := inFlight.LoadOrStore(m.Key, new(atomic.Int32))
		n := v.(*atomic.Int32)
		if n.Add(1) > 1 {
			overlap.Add(1)
		}
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond) // random work, not synchronisation
		c.add(m)
		n.Add(-1)
		return nil
	}
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: e.group("g"), Concurrency: 8}, h)
	e.publishN(topic, keys*per, keys)
	msgs := c.waitCount(e.t, e.f.Timeout, keys*per)
	if overlap.Load() > 0 {
		e.t.Fatalf("%d times a key was handled by two goroutines at once", overlap.Load())
	}
	assertOrdered(e, msgs)
}

// assertOrdered checks that each key's messages arrived in publish order
// (redeliveries may repeat a prefix, never go backwards past one).
func assertOrdered(e *env, msgs []*broker.Message) {
	e.t.Helper()
	last := map[string]int{}
	for i, m := range msgs {
		s := keySeq(e, i, m)
		prev, ok := last[m.Key]
		if ok && s < prev && !m.Delivery.Redelivered {
			e.t.Fatalf("key %q: message %d (per-key seq %d) arrived after seq %d", m.Key, i, s, prev)
		}
		if ok && s > prev+1 {
			e.t.Fatalf("key %q: seq %d arrived right after %d: a message was skipped or reordered", m.Key, s, prev)
		}
		if !ok && s != 0 {
			e.t.Fatalf("key %q: first message has seq %d, want 0", m.Key, s)
		}
		last[m.Key] = s
	}
}

// assertIncreasing checks that, per key, first deliveries come in publish
// order, allowing gaps (messages taken out of the stream, e.g. dead-lettered).
// Redeliveries may repeat an earlier message.
func assertIncreasing(e *env, msgs []*broker.Message) {
	e.t.Helper()
	last := map[string]int{}
	for i, m := range msgs {
		s := keySeq(e, i, m)
		if prev, ok := last[m.Key]; ok && s <= prev && !m.Delivery.Redelivered {
			e.t.Fatalf("key %q: message %d (per-key seq %d) arrived after seq %d", m.Key, i, s, prev)
		}
		last[m.Key] = s
	}
}

// keySeq is the per-key sequence number of message i.
func keySeq(e *env, i int, m *broker.Message) int {
	e.t.Helper()
	var s int
	if _, err := fmt.Sscan(m.Header(hdrKeySeq), &s); err != nil {
		e.t.Fatalf("message %d has no %s header", i, hdrKeySeq)
	}
	return s
}
