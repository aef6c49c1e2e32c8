package eventmodels_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/internal/samples"
)

func TestJSONRoundTrip(t *testing.T) {
	codec := eventmodels.NewJSONCodec(eventmodels.NewRegistry(), 0)
	if codec.ContentType() != "application/json" {
		t.Fatal(codec.ContentType())
	}
	for _, e := range samples.All() {
		typ := e.Envelope().EventType
		body, err := codec.Encode(e)
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		got, err := codec.Decode(body, eventmodels.Meta{EventType: typ})
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Errorf("%s: round trip changed the event\n got %#v\nwant %#v", typ, got, e)
		}
		again, _ := codec.Encode(got)
		if string(again) != string(body) {
			t.Errorf("%s: encoding is not stable\n%s\n%s", typ, body, again)
		}
	}
}

func TestJSONWireNames(t *testing.T) {
	body, err := eventmodels.NewJSONCodec(eventmodels.NewRegistry(), 0).Encode(samples.All()[6])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"event_id", "event_type", "timestamp", "correlation_id", "user_id", "schema_version", "job_id", "project_id", "usage", "node"} {
		if _, ok := m[k]; !ok {
			t.Errorf("field %q missing from %s", k, body)
		}
	}
	if m["timestamp"] != "2026-03-01T12:30:45.123Z" {
		t.Errorf("timestamp = %v", m["timestamp"])
	}
}

func TestJSONDecodeBadInput(t *testing.T) {
	reg := eventmodels.NewRegistry()
	codec := eventmodels.NewJSONCodec(reg, 4096)
	good, _ := codec.Encode(samples.All()[0])
	cases := []struct {
		name string
		body string
		meta eventmodels.Meta
		want error
	}{
		{"empty", "", eventmodels.Meta{}, eventmodels.ErrMalformed},
		{"null", "null", eventmodels.Meta{}, eventmodels.ErrMalformed},
		{"not an object", "[1,2]", eventmodels.Meta{}, eventmodels.ErrMalformed},
		{"no discriminator", `{"job_id":"x"}`, eventmodels.Meta{}, eventmodels.ErrMalformed},
		{"discriminator wrong type", `{"event_type":7}`, eventmodels.Meta{}, eventmodels.ErrMalformed},
		{"truncated", string(good[:len(good)/2]), eventmodels.Meta{}, eventmodels.ErrMalformed},
		{"trailing garbage", string(good) + "}", eventmodels.Meta{}, eventmodels.ErrMalformed},
		{"unknown type", `{"event_type":"job.teleported"}`, eventmodels.Meta{}, eventmodels.ErrUnknownEventType},
		{"header mismatch", string(good), eventmodels.Meta{EventType: "job.queued"}, eventmodels.ErrMalformed},
		{"field wrong type", strings.Replace(string(good), `"priority":5`, `"priority":"high"`, 1), eventmodels.Meta{}, eventmodels.ErrMalformed},
		{"bad uuid", strings.Replace(string(good), `"correlation_id":"0190f1c2`, `"correlation_id":"zz90f1c2`, 1), eventmodels.Meta{}, eventmodels.ErrMalformed},
		{"oversized", `{"event_type":"job.submitted","x":"` + strings.Repeat("a", 5000) + `"}`, eventmodels.Meta{}, eventmodels.ErrTooLarge},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := codec.Decode([]byte(tc.body), tc.meta)
			if e != nil || !errors.Is(err, tc.want) {
				t.Fatalf("Decode = %v, %v; want %v", e, err, tc.want)
			}
			var de *eventmodels.DecodeError
			if !errors.As(err, &de) || de.ContentType != "application/json" {
				t.Fatalf("error %v is not a *DecodeError", err)
			}
		})
	}
	t.Run("invalid event", func(t *testing.T) {
		body := strings.Replace(string(good), `"queue":"gpu-large"`, `"queue":""`, 1)
		_, err := codec.Decode([]byte(body), eventmodels.Meta{})
		var ve *eventmodels.ValidationError
		if !errors.As(err, &ve) || !ve.Has("spec.queue") {
			t.Fatalf("Decode = %v, want *ValidationError naming queue", err)
		}
	})
	t.Run("unknown fields are ignored", func(t *testing.T) {
		body := strings.Replace(string(good), `{`, `{"added_later":{"x":[1,2]},`, 1)
		if _, err := codec.Decode([]byte(body), eventmodels.Meta{}); err != nil {
			t.Fatal(err)
		}
	})
}

func TestJSONEncodeRefusesUnregistered(t *testing.T) {
	e := samples.All()[0]
	e.Envelope().EventType = "nope"
	if _, err := eventmodels.NewJSONCodec(eventmodels.NewRegistry(), 0).Encode(e); !errors.Is(err, eventmodels.ErrUnknownEventType) {
		t.Fatalf("Encode = %v", err)
	}
}

// FuzzJSONDecode feeds arbitrary bytes to the decoder: it must never panic,
// and whatever it accepts must be a valid event that survives re-encoding.
func FuzzJSONDecode(f *testing.F) {
	reg := eventmodels.NewRegistry()
	codec := eventmodels.NewJSONCodec(reg, 1<<16)
	for _, e := range samples.All() {
		b, _ := codec.Encode(e)
		f.Add(b, e.Envelope().EventType)
	}
	f.Add([]byte(`{"event_type":"job.metrics","progress":1e999}`), "")
	f.Add([]byte(`{"event_type":"audit","details":{"a":null}}`), "audit")
	f.Fuzz(func(t *testing.T, data []byte, typ string) {
		e, err := codec.Decode(data, eventmodels.Meta{EventType: typ})
		if err != nil {
			var de *eventmodels.DecodeError
			if e != nil || !errors.As(err, &de) {
				t.Fatalf("error %v (event %v) is not a *DecodeError with a nil event", err, e)
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("decoder accepted an invalid event: %v", err)
		}
		body, err := codec.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		again, err := codec.Decode(body, eventmodels.Meta{})
		if err != nil {
			t.Fatalf("re-decode: %v", err)
		}
		if !reflect.DeepEqual(normalize(again), normalize(e)) {
			t.Fatalf("re-encode changed the event\n%#v\n%#v", again, e)
		}
	})
}

// normalize maps empty and nil collections alike (JSON omits empty maps).
func normalize(e eventmodels.Event) eventmodels.Event {
	switch v := e.(type) {
	case *eventmodels.JobSubmitted:
		if len(v.Spec.Parameters) == 0 {
			v.Spec.Parameters = nil
		}
	case *eventmodels.Audit:
		if len(v.Details) == 0 {
			v.Details = nil
		}
	case *eventmodels.SystemHealth:
		if len(v.Checks) == 0 {
			v.Checks = nil
		}
	}
	return e
}
