package rabbitbus

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/cosmic-horizons/events/broker"
)

// TestWireRoundTrip: every header, the key and the body survive the mapping
// to an AMQP publishing and back, and the properties are set as documented.
func TestWireRoundTrip(t *testing.T) {
	m := &broker.Message{Topic: "job-lifecycle", Key: "job-ü-1", Body: []byte{0, 0xff, 'x'}, Headers: broker.Headers{
		{Key: broker.HeaderSpecVersion, Value: "1.0"},
		{Key: broker.HeaderID, Value: "0190f6a4-7c1e-7b8a-9d2e-1f2a3b4c5d6e"},
		{Key: broker.HeaderType, Value: "job.completed"},
		{Key: broker.HeaderTime, Value: "2026-11-26T10:11:12.345Z"},
		{Key: broker.HeaderCorrelationID, Value: "c-1"},
		{Key: broker.HeaderContentType, Value: "application/avro"},
		{Key: broker.HeaderTraceParent, Value: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"},
		{Key: "x-unicode", Value: "Grüße, 世界 ✓"},
		{Key: "x-empty", Value: ""},
	}}
	key, pub := toPublishing(m)
	if key != "job.completed" {
		t.Errorf("routing key %q, want the event type", key)
	}
	if pub.MessageId != m.Headers.Get(broker.HeaderID) || pub.CorrelationId != "c-1" || pub.Type != "job.completed" ||
		pub.ContentType != "application/avro" || pub.DeliveryMode != amqp.Persistent {
		t.Errorf("properties %+v", pub)
	}
	if want := time.Date(2026, 11, 26, 10, 11, 12, 345e6, time.UTC); !pub.Timestamp.Equal(want) {
		t.Errorf("Timestamp %v, want %v", pub.Timestamp, want)
	}
	for _, k := range []string{"cloudEvents_id", "cloudEvents_type", "cloudEvents_time", "cloudEvents_specversion", "cloudEvents_correlationid", HeaderKey, "traceparent", "x-unicode"} {
		if _, ok := pub.Headers[k]; !ok {
			t.Errorf("wire header %q missing: %v", k, pub.Headers)
		}
	}
	if _, ok := pub.Headers["content-type"]; ok {
		t.Error("content-type belongs in the ContentType property")
	}
	if err := pub.Headers.Validate(); err != nil {
		t.Fatalf("headers table: %v", err)
	}
	// What a consumer receives: the broker adds its own headers, and the
	// publisher's bookkeeping header is there too.
	h := maps.Clone(pub.Headers)
	h[headerSeq] = int64(7)
	h["x-delivery-count"] = int64(2)
	d := amqp.Delivery{Headers: h, Body: pub.Body, ContentType: pub.ContentType, MessageId: pub.MessageId, Type: pub.Type, CorrelationId: pub.CorrelationId}
	got := new(broker.Message)
	redelivered := fromDelivery(got, &d, "job-lifecycle")
	if redelivered {
		t.Error("reported redelivered")
	}
	if got.Key != m.Key || string(got.Body) != string(m.Body) || got.Topic != m.Topic {
		t.Errorf("got key %q body %x topic %q", got.Key, got.Body, got.Topic)
	}
	for _, hdr := range m.Headers {
		k, v := hdr.Key, hdr.Value
		if got.Headers.Get(k) != v {
			t.Errorf("header %q = %q, want %q", k, got.Headers.Get(k), v)
		}
	}
	if _, ok := got.Headers.Lookup(headerSeq); ok {
		t.Error("bookkeeping header leaked to the consumer")
	}
	if got.Headers.Get("x-delivery-count") != "2" {
		t.Errorf("broker header x-delivery-count = %q", got.Headers.Get("x-delivery-count"))
	}
	h[headerResent] = "true"
	if redelivered := fromDelivery(new(broker.Message), &d, "t"); !redelivered {
		t.Error("a re-sent copy must be reported as redelivered")
	}
}

// TestWireBookkeepingNames: the bookkeeping headers are named as this
// SDK's, and those of an older rabbitbus (x-rabbitbus-*) are still
// stripped and honoured.
func TestWireBookkeepingNames(t *testing.T) {
	for _, k := range []string{headerSeq, headerResent} {
		if !strings.HasPrefix(k, "ch-rabbitbus-") {
			t.Errorf("bookkeeping header %q is not named as rabbitbus's", k)
		}
	}
	d := amqp.Delivery{Headers: amqp.Table{legacySeq: int64(3), legacyResent: "true", "cloudEvents_id": "1"}}
	m := new(broker.Message)
	if !fromDelivery(m, &d, "t") {
		t.Error("legacy re-send mark not honoured")
	}
	if len(m.Headers) != 1 || m.Header(broker.HeaderID) != "1" {
		t.Errorf("headers %v, want ce_id only", m.Headers)
	}
}

// TestWireForeignPublisher: a message from a publisher that sets only the
// AMQP properties still yields the CloudEvents headers.
func TestWireForeignPublisher(t *testing.T) {
	d := amqp.Delivery{MessageId: "id-1", Type: "job.failed", CorrelationId: "c", ContentType: "application/json",
		Headers: amqp.Table{"cloudEvents:source": "py", "x-death": []any{amqp.Table{"reason": "rejected", "count": int64(1)}}}}
	m := new(broker.Message)
	fromDelivery(m, &d, "t")
	want := map[string]string{broker.HeaderID: "id-1", broker.HeaderType: "job.failed", broker.HeaderCorrelationID: "c",
		broker.HeaderContentType: "application/json", broker.HeaderSource: "py", "x-death": `[{"count":1,"reason":"rejected"}]`}
	for k, v := range want {
		if m.Headers.Get(k) != v {
			t.Errorf("header %q = %q, want %q", k, m.Headers.Get(k), v)
		}
	}
}

// TestCheckHeaders: names rabbitbus needs on the wire are refused.
func TestCheckHeaders(t *testing.T) {
	for _, k := range []string{HeaderKey, headerSeq, headerResent, legacySeq, legacyResent, "CC", "BCC", "cloudEvents_id", "cloudEvents:type", ""} {
		err := checkHeaders(&broker.Message{Headers: broker.Headers{{Key: k, Value: "v"}}})
		if !errors.Is(err, broker.ErrInvalidMessage) {
			t.Errorf("header %q: %v, want ErrInvalidMessage", k, err)
		}
	}
	if err := checkHeaders(&broker.Message{Headers: broker.Headers{{Key: "ce_id", Value: "1"}, {Key: "x-cc", Value: "v"}}}); err != nil {
		t.Errorf("ordinary headers refused: %v", err)
	}
}

func TestTableString(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		in   any
		want string
	}{
		{"s", "s"}, {[]byte("b"), "b"}, {nil, ""}, {true, "true"}, {int64(-3), "-3"}, {int32(4), "4"}, {uint8(5), "5"},
		{float64(1.5), "1.5"}, {ts, "2026-01-02T03:04:05Z"}, {amqp.Decimal{Scale: 2, Value: 123}, "123e-2"},
		{[]any{"a", int64(1)}, `["a",1]`},
	} {
		if got := tableString(tc.in); got != tc.want {
			t.Errorf("tableString(%#v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestQueueNames(t *testing.T) {
	if got := DefaultQueueName("job-lifecycle", "billing"); got != "job-lifecycle.billing" {
		t.Errorf("DefaultQueueName = %q", got)
	}
	long := string(make([]byte, 300))
	a, b := DefaultQueueName(long, "a"), DefaultQueueName(long, "b")
	if len(a) > shortenAbove || a == b {
		t.Errorf("long names: %d bytes, distinct %v", len(a), a != b)
	}
	for _, q := range []string{"", "amq.x", "a.*.b", "a.#"} {
		if checkQueue(q) == nil {
			t.Errorf("checkQueue(%q) accepted", q)
		}
	}
	for _, topic := range []string{"", " ", "amq.topic", string(make([]byte, maxTopicName+1))} {
		if checkTopic(topic) == nil {
			t.Errorf("checkTopic(%q) accepted", topic)
		}
	}
	keys, filtered := patterns(&broker.Subscription{EventTypes: []string{"job.*", "system.#", "job.*"}})
	if !filtered || len(keys) != 2 {
		t.Errorf("patterns = %v, %v", keys, filtered)
	}
	if keys, filtered := patterns(&broker.Subscription{EventTypes: []string{"job.*", "#"}}); filtered || keys[0] != "#" {
		t.Errorf("a # pattern takes everything: %v %v", keys, filtered)
	}
}
