package eventmodels_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/internal/samples"
)

func TestLabels(t *testing.T) {
	l := eventmodels.LabelsOf(map[string]string{"z": "1", "a": "2", "m": "3"})
	if l[0].Key != "a" || l[1].Key != "m" || l[2].Key != "z" {
		t.Fatalf("LabelsOf not sorted: %v", l)
	}
	if v, ok := l.Get("m"); !ok || v != "3" {
		t.Fatal("Get")
	}
	if _, ok := l.Get("nope"); ok {
		t.Fatal("Get of a missing key")
	}
	b, err := json.Marshal(l)
	if err != nil || string(b) != `{"a":"2","m":"3","z":"1"}` {
		t.Fatalf("MarshalJSON = %s, %v", b, err)
	}
	var back eventmodels.Labels
	if err := json.Unmarshal([]byte(`{"z":"1","a":"2","m":"3"}`), &back); err != nil || len(back) != 3 || back[0].Key != "a" {
		t.Fatalf("UnmarshalJSON = %v, %v", back, err)
	}
	if err := json.Unmarshal([]byte(`{"a":1}`), &back); err == nil {
		t.Fatal("non-string values must be refused")
	}
	if len(l.Map()) != 3 {
		t.Fatal("Map")
	}
	if eventmodels.LabelsOf(nil) != nil {
		t.Fatal("LabelsOf(nil) must be nil")
	}
}

func TestLabelsValidation(t *testing.T) {
	a := samples.All()[8].(*eventmodels.Audit)
	a.Details = eventmodels.Labels{{"ip", "1"}, {"ip", "2"}}
	var ve *eventmodels.ValidationError
	if err := a.Validate(); !errors.As(err, &ve) || !ve.Has("details") {
		t.Fatalf("duplicate keys: %v", err)
	}
	a.Details = eventmodels.Labels{{"", "x"}}
	if err := a.Validate(); !errors.As(err, &ve) || !ve.Has("details") {
		t.Fatalf("empty key: %v", err)
	}
}
