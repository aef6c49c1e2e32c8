package broker_test

import (
	"reflect"
	"testing"

	"github.com/cosmic-horizons/events/broker"
)

func TestMessageClone(t *testing.T) {
	m := newMessage()
	m.Delivery.Attempt = 2
	c := m.Clone()
	if !reflect.DeepEqual(c, m) {
		t.Fatalf("clone %+v differs from %+v", c, m)
	}
	c.SetHeader("x-custom", "changed")
	c.SetHeader("x-new", "v")
	c.Topic, c.Key = "other", "other"
	c.Delivery.Attempt = 9
	if m.Header("x-custom") != "kept" || m.Header("x-new") != "" || m.Topic != "job-lifecycle" || m.Key != "job-1" || m.Delivery.Attempt != 2 {
		t.Fatalf("changing the clone changed the original: %+v", m)
	}
	if &c.Body[0] != &m.Body[0] {
		t.Fatal("Clone copied the body; it is documented as shared")
	}

	bare := (&broker.Message{Topic: "t"}).Clone()
	if bare.Headers != nil {
		t.Fatalf("clone of a message without headers has %v", bare.Headers)
	}
}

func TestMessageHeaders(t *testing.T) {
	var m broker.Message
	if m.Header("missing") != "" {
		t.Fatal("Header on nil map")
	}
	m.SetHeader("a", "1")
	if m.Header("a") != "1" {
		t.Fatal("SetHeader on nil map")
	}
	m.SetHeader("a", "2")
	if m.Header("a") != "2" || len(m.Headers) != 1 {
		t.Fatalf("headers %v", m.Headers)
	}
}

func TestMessageSize(t *testing.T) {
	tests := []struct {
		m    broker.Message
		want int
	}{
		{broker.Message{}, 0},
		{broker.Message{Topic: "topic is not counted"}, 0},
		{broker.Message{Key: "abc", Body: make([]byte, 10)}, 13},
		{broker.Message{Key: "k", Body: []byte("xy"), Headers: broker.Headers{{Key: "h1", Value: "v"}, {Key: "ce_id", Value: "1234"}}}, 1 + 2 + 3 + 9},
	}
	for _, tt := range tests {
		if got := tt.m.Size(); got != tt.want {
			t.Errorf("Size(%+v) = %d, want %d", tt.m, got, tt.want)
		}
	}
}
