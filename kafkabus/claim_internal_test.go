package kafkabus

import (
	"testing"
	"time"

	"github.com/IBM/sarama"

	"github.com/cosmic-horizons/events/broker"
)

// TestFillMessageInternsHeaders: known header names and constant values
// come out equal to the input (interned or not), others are copied; a nil
// header is skipped; the message does not alias the record's bytes.
func TestFillMessageInternsHeaders(t *testing.T) {
	key, val := []byte("x-custom"), []byte("v1")
	cm := &sarama.ConsumerMessage{Topic: "t", Partition: 3, Offset: 7, Key: []byte("job-1"), Value: []byte("body"),
		Headers: []*sarama.RecordHeader{
			{Key: []byte(broker.HeaderType), Value: []byte("job.completed")},
			{Key: []byte(broker.HeaderSpecVersion), Value: []byte("1.0")},
			{Key: []byte(broker.HeaderID), Value: []byte("0190f3b2-0000-7000-8000-000000000001")},
			nil,
			{Key: key, Value: val},
		}}
	var m broker.Message
	hc := newHeaderCache()
	fillMessage(&m, cm, time.Now(), hc)
	want := map[string]string{broker.HeaderType: "job.completed", broker.HeaderSpecVersion: "1.0",
		broker.HeaderID: "0190f3b2-0000-7000-8000-000000000001", "x-custom": "v1"}
	if len(m.Headers) != len(want) {
		t.Fatalf("headers %v, want %v", m.Headers, want)
	}
	for k, v := range want {
		if m.Headers.Get(k) != v {
			t.Fatalf("header %s = %q, want %q (all: %v)", k, m.Headers.Get(k), v, m.Headers)
		}
	}
	key[0], val[0] = 'X', 'V' // the record's buffers are reused by sarama
	if m.Headers.Get("x-custom") != "v1" {
		t.Fatalf("a copied header changed with the record's bytes: %v", m.Headers)
	}
	if m.Topic != "t" || m.Key != "job-1" || m.Delivery.Partition != 3 || m.Delivery.Offset != 7 || m.Delivery.Attempt != 1 {
		t.Fatalf("message %+v", m)
	}
	// A message of any event type (here one no registry lists) allocates
	// no header name nor repeating value once seen, and one block for its
	// key and the values that differ per message.
	cm.Headers[0].Value = []byte("observatory.dome_closed")
	m2 := broker.Message{Headers: broker.Headers{}}
	fillMessage(&m2, cm, time.Now(), hc)
	if m2.Headers.Get(broker.HeaderType) != "observatory.dome_closed" {
		t.Fatalf("ce_type %q", m2.Headers.Get(broker.HeaderType))
	}
	if n := testing.AllocsPerRun(100, func() {
		clear(m2.Headers)
		fillMessage(&m2, cm, time.Now(), hc)
	}); n != 1 {
		t.Errorf("filling a message allocates %v times, want 1 (the block of its key and varying values)", n)
	}
}
