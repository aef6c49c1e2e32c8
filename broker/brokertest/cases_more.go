package brokertest

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/internal/samples"
)

func testLateSubscriber(e *env) {
	if !e.f.Persistent {
		e.t.Skip("backend is not persistent")
	}
	topic := e.topic("late")
	group := e.group("g")
	e.declareGroup(topic, group)
	n := e.n(50)
	e.publishN(topic, n, 5)
	c := newCollector()
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: group}, c.handler)
	seen := distinct(c.waitCount(e.t, e.f.Timeout, n))
	if len(seen) != n {
		e.t.Fatalf("late group saw %d of %d", len(seen), n)
	}
}

func testEphemeral(e *env) {
	if !e.f.Ephemeral {
		e.t.Skip("backend does not support ephemeral subscriptions")
	}
	topic := e.topic("eph")
	// A durable group keeps the topic's data, so only the ephemeral
	// subscription's start position decides what it sees.
	durable := newCollector()
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: e.group("durable")}, durable.handler)
	e.publishN(topic, 10, 2)
	durable.waitCount(e.t, e.f.Timeout, 10)

	live := newCollector()
	c := e.subscribe(nil, broker.Subscription{Topic: topic, Group: e.group("live"), Ephemeral: true}, live.handler)
	ctx, cancel := context.WithTimeout(context.Background(), e.f.Timeout)
	defer cancel()
	var after []*broker.Message
	for i := 100; i < 110; i++ {
		after = append(after, msg(topic, fmt.Sprintf("key-%d", i%2), i, []byte("new")))
	}
	if err := e.b.Publisher.Publish(ctx, after...); err != nil {
		e.t.Fatalf("Publish: %v", err)
	}
	got := live.waitCount(e.t, e.f.Timeout, 10)
	for _, m := range got {
		if seqOf(m) < 100 {
			e.t.Fatalf("ephemeral subscriber got message %d published before it subscribed", seqOf(m))
		}
	}
	if err := e.closeWithin(c); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
}

func testEventTypeFilter(e *env) {
	topic := e.topic("filter")
	c := newCollector()
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: e.group("g"), EventTypes: []string{"job.*", "system.#"}}, c.handler)
	types := []string{"job.completed", "notification", "job.metrics.extra", "system.health", "system", "audit", "job.failed"}
	ctx, cancel := context.WithTimeout(context.Background(), e.f.Timeout)
	defer cancel()
	for i, typ := range types {
		m := msg(topic, "k", i, []byte(typ))
		m.SetHeader(broker.HeaderType, typ)
		if err := e.b.Publisher.Publish(ctx, m); err != nil {
			e.t.Fatalf("Publish: %v", err)
		}
	}
	marker := msg(topic, "k", 99, []byte("marker"))
	marker.SetHeader(hdrSeq, markerSeq)
	marker.SetHeader(broker.HeaderType, "job.marker")
	if err := e.b.Publisher.Publish(ctx, marker); err != nil {
		e.t.Fatalf("Publish: %v", err)
	}
	got := c.waitUntil(e.t, e.f.Timeout, "marker", hasMarker)
	var names []string
	for _, m := range got {
		names = append(names, m.Header(broker.HeaderType))
	}
	want := []string{"job.completed", "system.health", "system", "job.failed", "job.marker"}
	if !reflect.DeepEqual(names, want) {
		e.t.Fatalf("filter [job.* system.#] passed %v, want %v", names, want)
	}
}

func testTypedEvents(e *env) {
	topic := e.topic("typed")
	bus, err := events.NewBus(e.b.Publisher, events.WithSource("brokertest"),
		events.WithRoute(func(eventmodels.TypeInfo, eventmodels.Event) string { return topic }))
	if err != nil {
		e.t.Fatal(err)
	}
	var mu sync.Mutex
	var got []eventmodels.Event
	c := newCollector()
	r := events.NewRouter()
	events.OnEvent(r, func(ctx context.Context, ev eventmodels.Event) error {
		m, _ := events.MessageFromContext(ctx)
		mu.Lock()
		got = append(got, ev)
		mu.Unlock()
		c.add(m)
		return nil
	})
	h, err := bus.Handler(r)
	if err != nil {
		e.t.Fatal(err)
	}
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: e.group("g")}, h)
	sent := samples.All()
	ctx, cancel := context.WithTimeout(context.Background(), e.f.Timeout)
	defer cancel()
	if err := bus.Publish(ctx, sent...); err != nil {
		e.t.Fatalf("Bus.Publish: %v", err)
	}
	c.waitUntil(e.t, e.f.Timeout, fmt.Sprintf("%d typed events", len(sent)), func(ms []*broker.Message) bool { return len(ms) >= len(sent) })
	mu.Lock()
	defer mu.Unlock()
	byID := map[string]eventmodels.Event{}
	for _, ev := range got {
		byID[ev.Envelope().EventID.String()] = ev
	}
	for _, want := range sent {
		ev, ok := byID[want.Envelope().EventID.String()]
		if !ok {
			e.t.Fatalf("%s not received", want.Envelope().EventType)
		}
		if !reflect.DeepEqual(ev, want) {
			e.t.Errorf("%s changed in transit:\n got %#v\nwant %#v", want.Envelope().EventType, ev, want)
		}
	}
}
