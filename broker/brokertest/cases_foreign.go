package brokertest

import (
	"bytes"
	"context"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/internal/samples"
)

// hdrCase names the case a message of testForeignCloudEvents stands for.
const hdrCase = "bt-case"

// testForeignCloudEvents: messages as producers outside this SDK write
// them, published through the backend directly, reach a typed handler when
// CloudEvents 1.0 allows them — UUIDs in upper case, the content type given
// only as the datacontenttype attribute (cloudEvents_datacontenttype on
// AMQP), no content type with an Avro body — and are dead-lettered at
// once, marked permanent, with an x-dlq-error naming the header, when it
// forbids them: no ce_specversion, ce_specversion 0.3, no ce_source, a
// JSON body without ce_type.
func testForeignCloudEvents(e *env) {
	topic := e.topic("foreign-ce")
	dlq := newCollector()
	e.subscribe(nil, broker.Subscription{Topic: broker.DeadLetterTopic(topic), Group: e.group("dlq")}, dlq.handler)
	route := events.WithRoute(func(eventmodels.TypeInfo, eventmodels.Event) string { return topic })
	avroBus, err := events.NewBus(e.b.Publisher, events.WithSource("//foreign/producer"), route)
	if err != nil {
		e.t.Fatal(err)
	}
	jsonBus, err := events.NewBus(e.b.Publisher, events.WithSource("//foreign/producer"), route, events.WithJSON())
	if err != nil {
		e.t.Fatal(err)
	}
	var mu sync.Mutex
	handled := map[string]eventmodels.Event{}
	got := newCollector()
	r := events.NewRouter()
	events.OnEvent(r, func(ctx context.Context, ev eventmodels.Event) error {
		m, _ := events.MessageFromContext(ctx)
		mu.Lock()
		handled[m.Header(hdrCase)] = ev
		mu.Unlock()
		got.add(m)
		return nil
	})
	h, err := avroBus.Handler(r)
	if err != nil {
		e.t.Fatal(err)
	}
	group := e.group("g")
	e.declareGroup(topic, group)
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: group}, h)

	evs := samples.All()
	type tc struct {
		name string
		bus  *events.Bus
		ev   eventmodels.Event
		edit func(m *broker.Message, ev eventmodels.Event)
		dlq  string // "": accepted; else a text x-dlq-error must hold
	}
	cases := []tc{
		{"upper-case UUIDs, Avro", avroBus, evs[3], upperCaseIDs, ""},
		{"upper-case UUIDs, JSON", jsonBus, evs[7], upperCaseIDs, ""},
		{"only ce_datacontenttype, JSON", jsonBus, evs[6], func(m *broker.Message, _ eventmodels.Event) {
			m.Headers.Del(broker.HeaderContentType)
			m.SetHeader(broker.HeaderDataContentType, eventmodels.ContentTypeJSON)
		}, ""},
		{"no content type, Avro", avroBus, evs[9], func(m *broker.Message, _ eventmodels.Event) {
			m.Headers.Del(broker.HeaderContentType)
		}, ""},
		{"no ce_specversion", avroBus, evs[0], func(m *broker.Message, _ eventmodels.Event) {
			m.Headers.Del(broker.HeaderSpecVersion)
		}, "ce_specversion is missing"},
		{"ce_specversion 0.3", jsonBus, evs[1], func(m *broker.Message, _ eventmodels.Event) {
			m.SetHeader(broker.HeaderSpecVersion, "0.3")
		}, `ce_specversion is "0.3", want "1.0"`},
		{"no ce_source", avroBus, evs[2], func(m *broker.Message, _ eventmodels.Event) {
			m.Headers.Del(broker.HeaderSource)
		}, "ce_source is missing"},
		{"JSON without ce_type", jsonBus, evs[8], func(m *broker.Message, _ eventmodels.Event) {
			m.Headers.Del(broker.HeaderType)
		}, "ce_type is missing"},
	}
	var msgs []*broker.Message
	accepted, refused := 0, 0
	for i, c := range cases {
		m, err := c.bus.Message(c.ev)
		if err != nil {
			e.t.Fatal(err)
		}
		c.edit(m, c.ev)
		m.SetHeader(hdrCase, c.name)
		m.SetHeader(hdrSeq, strconv.Itoa(i))
		msgs = append(msgs, m)
		if c.dlq == "" {
			accepted++
		} else {
			refused++
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), e.f.Timeout)
	defer cancel()
	if err := e.b.Publisher.Publish(ctx, msgs...); err != nil {
		e.t.Fatalf("Publish: %v", err)
	}
	got.waitCount(e.t, e.f.Timeout, accepted)
	dlq.waitCount(e.t, e.f.Timeout, refused)
	e.publishMarker(broker.DeadLetterTopic(topic))
	dls := dlq.waitUntil(e.t, e.f.Timeout, "dead-letter marker", hasMarker)
	byCase := map[string]*broker.Message{}
	for _, m := range dls {
		if m.Header(hdrSeq) != markerSeq {
			byCase[m.Header(hdrCase)] = m
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for i, c := range cases {
		if c.dlq == "" {
			if !reflect.DeepEqual(handled[c.name], c.ev) {
				e.t.Errorf("%s: handled %+v, want %+v", c.name, handled[c.name], c.ev)
			}
			if byCase[c.name] != nil {
				e.t.Errorf("%s: dead-lettered: %s", c.name, byCase[c.name].Header(broker.HeaderDLQError))
			}
			continue
		}
		dl := byCase[c.name]
		if _, ok := handled[c.name]; ok || dl == nil {
			e.t.Errorf("%s: handled %v, dead-lettered %v; want only dead-lettered", c.name, ok, dl != nil)
			continue
		}
		if msg := dl.Header(broker.HeaderDLQError); dl.Header(broker.HeaderDLQPermanent) != "true" ||
			!strings.Contains(msg, events.ErrNotCloudEvent.Error()) || !strings.Contains(msg, c.dlq) || !bytes.Equal(dl.Body, msgs[i].Body) {
			e.t.Errorf("%s: dead letter x-dlq-permanent %q, x-dlq-error %q; want permanent, naming %q, body kept",
				c.name, dl.Header(broker.HeaderDLQPermanent), msg, c.dlq)
		}
	}
	if len(byCase) != refused {
		e.t.Errorf("dead letters %s; want %d", describe(dls), refused)
	}
}

// upperCaseIDs rewrites m as a producer writing UUIDs in upper case (Swift's
// uuidString, SQL Server) sends it: ce_id, ce_correlationid, and event_id
// and correlation_id in the body (the same length in upper case, so an
// Avro body stays well-formed).
func upperCaseIDs(m *broker.Message, ev eventmodels.Event) {
	env := ev.Envelope()
	for _, id := range []string{env.EventID.String(), env.CorrelationID.String()} {
		m.Body = bytes.ReplaceAll(m.Body, []byte(id), []byte(strings.ToUpper(id)))
	}
	m.SetHeader(broker.HeaderID, strings.ToUpper(env.EventID.String()))
	m.SetHeader(broker.HeaderCorrelationID, strings.ToUpper(env.CorrelationID.String()))
}
