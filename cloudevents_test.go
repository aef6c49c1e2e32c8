package events_test

import (
	"bytes"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/internal/samples"
)

// upperIDs rewrites m as a producer writing UUIDs in upper case would send
// it: ce_id, ce_correlationid, and event_id and correlation_id in the body
// (the same length in upper case, so an Avro body stays well-formed).
func upperIDs(t *testing.T, m *broker.Message, e eventmodels.Event) {
	t.Helper()
	env := e.Envelope()
	for _, id := range []string{env.EventID.String(), env.CorrelationID.String()} {
		up := strings.ToUpper(id)
		if !bytes.Contains(m.Body, []byte(id)) {
			t.Fatalf("body does not hold %s", id)
		}
		m.Body = bytes.ReplaceAll(m.Body, []byte(id), []byte(up))
	}
	m.SetHeader(broker.HeaderID, strings.ToUpper(env.EventID.String()))
	m.SetHeader(broker.HeaderCorrelationID, strings.ToUpper(env.CorrelationID.String()))
}

// TestDecodeUpperCaseUUIDs: UUIDs compare case-insensitively (RFC 9562):
// an event whose IDs are written in upper case in the headers and the body
// decodes to the same event, in both encodings.
func TestDecodeUpperCaseUUIDs(t *testing.T) {
	for _, opts := range [][]events.Option{nil, {events.WithJSON()}} {
		bus, _ := newBus(t, opts...)
		for _, e := range samples.All() {
			m, err := bus.Message(e)
			if err != nil {
				t.Fatal(err)
			}
			upperIDs(t, m, e)
			got, err := bus.Decode(m)
			if err != nil {
				t.Fatalf("%s %s: %v", m.Header(broker.HeaderContentType), e.Envelope().EventType, err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Fatalf("%s: decoded %+v, want %+v", e.Envelope().EventType, got, e)
			}
		}
	}
}

// TestDecodeIDMismatch: headers naming another ID than the body are
// refused, whatever the case.
func TestDecodeIDMismatch(t *testing.T) {
	bus, _ := newBus(t)
	e := samples.All()[3]
	for _, h := range []string{broker.HeaderID, broker.HeaderCorrelationID} {
		for _, v := range []string{strings.ToUpper(eventmodels.NewEventID().String()), "not-a-uuid"} {
			m, err := bus.Message(e)
			if err != nil {
				t.Fatal(err)
			}
			m.SetHeader(h, v)
			if _, err := bus.Decode(m); !broker.IsPermanent(err) || !strings.Contains(err.Error(), h+" "+v+" differs") {
				t.Fatalf("%s=%s: err %v; want a permanent error naming it", h, v, err)
			}
		}
	}
}

// TestDecodeRequiresCloudEventsAttributes: the attributes CloudEvents 1.0
// requires are required, on every encoding, with a permanent
// *CloudEventError naming each broken one.
func TestDecodeRequiresCloudEventsAttributes(t *testing.T) {
	tests := []struct {
		name  string
		edit  func(m *broker.Message)
		attrs []string
		text  string
	}{
		{"no ce_specversion", func(m *broker.Message) { m.Headers.Del(broker.HeaderSpecVersion) }, []string{"specversion"}, `ce_specversion is missing`},
		{"ce_specversion 0.3", func(m *broker.Message) { m.SetHeader(broker.HeaderSpecVersion, "0.3") }, []string{"specversion"}, `ce_specversion is "0.3", want "1.0"`},
		{"empty ce_specversion", func(m *broker.Message) { m.SetHeader(broker.HeaderSpecVersion, "") }, []string{"specversion"}, `ce_specversion is missing`},
		{"no ce_source", func(m *broker.Message) { m.Headers.Del(broker.HeaderSource) }, []string{"source"}, `ce_source is missing`},
		{"no ce_id", func(m *broker.Message) { m.Headers.Del(broker.HeaderID) }, []string{"id"}, `ce_id is missing`},
		{"no ce_type", func(m *broker.Message) { m.Headers.Del(broker.HeaderType) }, []string{"type"}, `ce_type is missing`},
		{"several", func(m *broker.Message) {
			m.Headers.Del(broker.HeaderSource)
			m.SetHeader(broker.HeaderSpecVersion, "0.3")
		}, []string{"specversion", "source"}, `ce_specversion is "0.3", want "1.0"; ce_source is missing`},
	}
	for _, opts := range [][]events.Option{nil, {events.WithJSON()}} {
		bus, _ := newBus(t, opts...)
		for _, tt := range tests {
			m, err := bus.Message(samples.All()[0])
			if err != nil {
				t.Fatal(err)
			}
			tt.edit(m)
			e, err := bus.Decode(m)
			var ce *events.CloudEventError
			if e != nil || !broker.IsPermanent(err) || !errors.Is(err, events.ErrNotCloudEvent) || !errors.As(err, &ce) {
				t.Fatalf("%s %s: Decode = %v, %v; want a permanent *CloudEventError", m.Header(broker.HeaderContentType), tt.name, e, err)
			}
			if !slices.Equal(ce.Attributes, tt.attrs) || !strings.Contains(err.Error(), tt.text) {
				t.Fatalf("%s: attributes %v, error %q; want %v and %q", tt.name, ce.Attributes, err, tt.attrs, tt.text)
			}
		}
	}
}

// TestDecodeDataContentType: without content-type, ce_datacontenttype (the
// CloudEvents attribute; cloudEvents_datacontenttype on AMQP) names the
// encoding; the two disagreeing is refused, naming both.
func TestDecodeDataContentType(t *testing.T) {
	jsonBus, _ := newBus(t, events.WithJSON())
	avroBus, _ := newBus(t)
	e := samples.All()[6]
	for _, b := range []*events.Bus{jsonBus, avroBus} {
		m, err := b.Message(e)
		if err != nil {
			t.Fatal(err)
		}
		ct := m.Header(broker.HeaderContentType)
		m.Headers.Del(broker.HeaderContentType)
		m.SetHeader(broker.HeaderDataContentType, ct+"; charset=utf-8")
		got, err := avroBus.Decode(m)
		if err != nil || !reflect.DeepEqual(got, e) {
			t.Fatalf("%s in ce_datacontenttype only: %v, %v", ct, got, err)
		}
	}
	m, err := jsonBus.Message(e)
	if err != nil {
		t.Fatal(err)
	}
	m.SetHeader(broker.HeaderDataContentType, eventmodels.ContentTypeAvro)
	_, err = avroBus.Decode(m)
	if !broker.IsPermanent(err) || !errors.Is(err, eventmodels.ErrUnsupportedContentType) ||
		!strings.Contains(err.Error(), `content-type "application/json" and ce_datacontenttype "application/avro" disagree`) {
		t.Fatalf("disagreeing content types: err %v", err)
	}
}

// TestDecodeNoContentType: no content type means Avro; an Avro body
// decodes, and a JSON body fails with an error that says Avro was assumed.
func TestDecodeNoContentType(t *testing.T) {
	jsonBus, _ := newBus(t, events.WithJSON())
	avroBus, _ := newBus(t)
	e := samples.All()[6]
	m, err := avroBus.Message(e)
	if err != nil {
		t.Fatal(err)
	}
	m.Headers.Del(broker.HeaderContentType)
	if got, err := avroBus.Decode(m); err != nil || !reflect.DeepEqual(got, e) {
		t.Fatalf("Avro without content type: %v, %v", got, err)
	}
	m, err = jsonBus.Message(e)
	if err != nil {
		t.Fatal(err)
	}
	m.Headers.Del(broker.HeaderContentType)
	_, err = avroBus.Decode(m)
	if !broker.IsPermanent(err) || !errors.Is(err, eventmodels.ErrMalformed) ||
		!strings.Contains(err.Error(), "neither a content-type nor a ce_datacontenttype header, so its body was read as application/avro (the default)") {
		t.Fatalf("JSON without content type: err %v", err)
	}
}
