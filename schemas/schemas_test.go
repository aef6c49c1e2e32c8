package schemas_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/internal/samples"
	"github.com/cosmic-horizons/events/schemas"
	"github.com/hamba/avro/v2"
)

func newCodec(t testing.TB, reg *eventmodels.Registry, opts ...schemas.CodecOption) *schemas.AvroCodec {
	t.Helper()
	c, err := schemas.NewAvroCodec(reg, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestCatalogVersions(t *testing.T) {
	cat, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"job-lifecycle": 1, "job-metrics": 2, "notifications": 1, "audit-trail": 1, "system-health": 1}
	if got := cat.Names(); !reflect.DeepEqual(got, []string{"audit-trail", "job-lifecycle", "job-metrics", "notifications", "system-health"}) {
		t.Fatalf("Names() = %v", got)
	}
	reg := eventmodels.NewRegistry()
	for _, info := range reg.Types() {
		if _, ok := cat.Current(info.Schema); !ok {
			t.Errorf("%s: schema %q missing", info.EventType, info.Schema)
		}
	}
	for name, v := range want {
		versions := cat.Versions(name)
		if len(versions) != v {
			t.Errorf("%s: %d versions, want %d (history/ must keep every released version)", name, len(versions), v)
			continue
		}
		for i, s := range versions {
			if s.Version != i+1 || s.Name != name {
				t.Errorf("%s: version %d is %s v%d", name, i+1, s.Name, s.Version)
			}
		}
		if !strings.Contains(versions[0].Source, `"namespace": "cosmichorizons.events"`) {
			t.Errorf("%s: schema must live in the cosmichorizons.events namespace", name)
		}
	}
}

// TestCompatibility checks every schema against the version before it in both
// directions (FULL compatibility): new readers read old data and old readers
// read new data.
func TestCompatibility(t *testing.T) {
	cat, _ := schemas.Builtin()
	for _, name := range cat.Names() {
		versions := cat.Versions(name)
		for i := 1; i < len(versions); i++ {
			prev, cur := versions[i-1], versions[i]
			if err := fullyCompatible(prev.Avro, cur.Avro); err != nil {
				t.Errorf("%s v%d → v%d: %v", name, prev.Version, cur.Version, err)
			}
		}
	}
}

func fullyCompatible(prev, cur avro.Schema) error {
	sc := avro.NewSchemaCompatibility()
	if err := sc.Compatible(cur, prev); err != nil {
		return errors.New("not backward compatible: " + err.Error())
	}
	if err := sc.Compatible(prev, cur); err != nil {
		return errors.New("not forward compatible: " + err.Error())
	}
	return nil
}

// TestCompatibilityCheckCatchesBadEdits proves the check above fails on the
// edits it exists to stop.
func TestCompatibilityCheckCatchesBadEdits(t *testing.T) {
	cat, _ := schemas.Builtin()
	cur, _ := cat.Current("job-metrics")
	fields := func(rec map[string]any) []any { return rec["fields"].([]any) }
	edits := map[string]func(rec map[string]any){
		"field added without default": func(rec map[string]any) {
			rec["fields"] = append(fields(rec), map[string]any{"name": "site", "type": "string"})
		},
		"field type changed": func(rec map[string]any) {
			usage := fields(rec)[8].(map[string]any)["type"].(map[string]any)
			fields(usage)[2].(map[string]any)["type"] = "string" // memory_peak_mb
		},
		"field removed without default": func(rec map[string]any) {
			rec["fields"] = append(fields(rec)[:7:7], fields(rec)[8:]...) // project_id
		},
	}
	for name, edit := range edits {
		var rec map[string]any
		if err := json.Unmarshal([]byte(cur.Source), &rec); err != nil {
			t.Fatal(err)
		}
		edit(rec)
		src, _ := json.Marshal(rec)
		edited, err := avro.ParseWithCache(string(src), "", &avro.SchemaCache{})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if fullyCompatible(cur.Avro, edited) == nil {
			t.Errorf("%s: compatibility check passed an incompatible edit", name)
		}
	}
}

// TestEnumEvolution: adding a symbol breaks old readers unless the enum has a
// default, which is why ErrorClass, Channel, Severity and HealthStatus have one.
func TestEnumEvolution(t *testing.T) {
	cat, _ := schemas.Builtin()
	cur, _ := cat.Current("job-lifecycle")
	addSymbol := func(enum, symbol string) avro.Schema {
		var union []map[string]any
		if err := json.Unmarshal([]byte(cur.Source), &union); err != nil {
			t.Fatal(err)
		}
		var walk func(v any)
		walk = func(v any) {
			switch x := v.(type) {
			case map[string]any:
				if x["type"] == "enum" && x["name"] == enum {
					x["symbols"] = append(x["symbols"].([]any), symbol)
				}
				for _, c := range x {
					walk(c)
				}
			case []any:
				for _, c := range x {
					walk(c)
				}
			}
		}
		for _, r := range union {
			walk(r)
		}
		out, _ := json.Marshal(union)
		s, err := avro.ParseWithCache(string(out), "", &avro.SchemaCache{})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if fullyCompatible(cur.Avro, addSymbol("JobStatus", "paused")) == nil {
		t.Error("adding a JobStatus symbol (no default) must be flagged")
	}
	if err := fullyCompatible(cur.Avro, addSymbol("ErrorClass", "quota_exceeded")); err != nil {
		t.Errorf("adding an ErrorClass symbol (enum has a default) must pass: %v", err)
	}
}

// TestEmptyLabelsSameInBothCodecs: an event with empty labels decodes to the
// same Go value from JSON and from Avro (nil, not an empty slice).
func TestEmptyLabelsSameInBothCodecs(t *testing.T) {
	reg := eventmodels.NewRegistry()
	avroCodec := newCodec(t, reg)
	jsonCodec := eventmodels.NewJSONCodec(reg, 0)
	for _, e := range samples.All() {
		switch v := e.(type) {
		case *eventmodels.JobSubmitted:
			v.Spec.Parameters = eventmodels.Labels{}
		case *eventmodels.Audit:
			v.Details = eventmodels.Labels{}
		default:
			continue
		}
		typ := e.Envelope().EventType
		meta := eventmodels.Meta{EventType: typ}
		jb, err := jsonCodec.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		fromJSON, err := jsonCodec.Decode(jb, meta)
		if err != nil {
			t.Fatal(err)
		}
		ab, err := avroCodec.Encode(e)
		if err != nil {
			t.Fatal(err)
		}
		fromAvro, err := avroCodec.Decode(ab, meta)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(fromAvro, fromJSON) {
			t.Errorf("%s: empty labels decode differently\nAvro %#v\nJSON %#v", typ, fromAvro, fromJSON)
		}
	}
}

func TestRoundTripJSONAvroJSON(t *testing.T) {
	reg := eventmodels.NewRegistry()
	avroCodec := newCodec(t, reg)
	jsonCodec := eventmodels.NewJSONCodec(reg, 0)
	for _, e := range samples.All() {
		typ := e.Envelope().EventType
		t.Run(typ, func(t *testing.T) {
			j1, err := jsonCodec.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			fromJSON, err := jsonCodec.Decode(j1, eventmodels.Meta{})
			if err != nil {
				t.Fatal(err)
			}
			body, err := avroCodec.Encode(fromJSON)
			if err != nil {
				t.Fatal(err)
			}
			fromAvro, err := avroCodec.Decode(body, eventmodels.Meta{EventType: typ})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(fromAvro, e) {
				t.Errorf("Avro round trip changed the event\n got %#v\nwant %#v", fromAvro, e)
			}
			j2, err := jsonCodec.Encode(fromAvro)
			if err != nil {
				t.Fatal(err)
			}
			if string(j1) != string(j2) {
				t.Errorf("JSON differs after the Avro leg\n%s\n%s", j1, j2)
			}
			again, _ := avroCodec.Encode(fromAvro)
			if string(again) != string(body) {
				t.Error("Avro encoding is not byte-stable")
			}
			if got, want := avroCodec.DataSchema(typ), reg.Types(); got == "" || len(want) == 0 {
				t.Errorf("DataSchema(%s) empty", typ)
			}
		})
	}
}

// TestDecodableFromAvscAlone decodes every body the way a consumer in another
// language would: with the .avsc text named by ce_dataschema and nothing of
// this module's Go types.
func TestDecodableFromAvscAlone(t *testing.T) {
	reg := eventmodels.NewRegistry()
	codec := newCodec(t, reg)
	cat, _ := schemas.Builtin()
	jsonCodec := eventmodels.NewJSONCodec(reg, 0)
	for _, e := range samples.All() {
		typ := e.Envelope().EventType
		body, _ := codec.Encode(e)
		name, version, ok := schemas.ParseDataSchema(codec.DataSchema(typ))
		if !ok {
			t.Fatalf("%s: bad data schema %q", typ, codec.DataSchema(typ))
		}
		s, _ := cat.Version(name, version)
		foreign, err := avro.Parse(s.Source) // a fresh parse of the text, as another program would
		if err != nil {
			t.Fatal(err)
		}
		var generic any
		if err := avro.Unmarshal(foreign, body, &generic); err != nil {
			t.Fatalf("%s: generic decode: %v", typ, err)
		}
		rec, ok := generic.(map[string]any)
		if !ok {
			t.Fatalf("%s: decoded %T", typ, generic)
		}
		if u, isUnion := s.Avro.(*avro.UnionSchema); isUnion && len(u.Types()) > 1 {
			if len(rec) != 1 {
				t.Fatalf("%s: union value %v", typ, rec)
			}
			info, _ := reg.Lookup(typ)
			branch, ok := rec[info.AvroName].(map[string]any)
			if !ok {
				t.Fatalf("%s: union value %v has no branch %s", typ, rec, info.AvroName)
			}
			rec = branch
		}
		var want map[string]any
		j, _ := jsonCodec.Encode(e)
		_ = json.Unmarshal(j, &want)
		for _, f := range []string{"event_type", "user_id", "job_id", "component", "actor"} {
			if w, ok := want[f]; ok && rec[f] != w {
				t.Errorf("%s: field %s = %v, want %v", typ, f, rec[f], w)
			}
		}
		if rec["event_id"] != e.Envelope().EventID.String() {
			t.Errorf("%s: event_id = %v", typ, rec["event_id"])
		}
	}
}

// TestDecodeOlderSchemaVersion reads a job.metrics body written by a v1
// producer (no node field) with the v2 codec.
func TestDecodeOlderSchemaVersion(t *testing.T) {
	reg := eventmodels.NewRegistry()
	codec := newCodec(t, reg)
	cat, _ := schemas.Builtin()
	v1, _ := cat.Version("job-metrics", 1)
	e := samples.All()[6].(*eventmodels.JobMetrics)
	body, err := avro.Marshal(v1.Avro, e) // a v1 writer ignores the node field
	if err != nil {
		t.Fatal(err)
	}
	got, err := codec.Decode(body, eventmodels.Meta{EventType: eventmodels.TypeJobMetrics, SchemaVersion: 1})
	if err != nil {
		t.Fatal(err)
	}
	m := got.(*eventmodels.JobMetrics)
	if m.Node != "" || m.Usage != e.Usage || m.JobID != e.JobID || m.ProjectID != e.ProjectID {
		t.Fatalf("v1 body read as %+v", m)
	}
	// Reading the v1 body as if it were v2 must not succeed silently.
	if _, err := codec.Decode(body, eventmodels.Meta{EventType: eventmodels.TypeJobMetrics}); !errors.Is(err, eventmodels.ErrMalformed) {
		t.Fatalf("v1 body read as v2: %v, want ErrMalformed", err)
	}
	if _, err := codec.Decode(body, eventmodels.Meta{EventType: eventmodels.TypeJobMetrics, SchemaVersion: 3}); !errors.Is(err, schemas.ErrUnknownSchemaVersion) {
		t.Fatalf("v3 body: %v, want ErrUnknownSchemaVersion", err)
	}
}

func TestAvroDecodeBadInput(t *testing.T) {
	reg := eventmodels.NewRegistry()
	codec := newCodec(t, reg, schemas.WithMaxEventSize(4096))
	meta := func(typ string) eventmodels.Meta { return eventmodels.Meta{EventType: typ} }
	submitted := samples.All()[0]
	good, _ := codec.Encode(submitted)
	invalid := samples.All()[1].(*eventmodels.JobQueued)
	invalid.Position = -3
	invalidBody, _ := codec.Encode(invalid)
	cases := []struct {
		name string
		body []byte
		meta eventmodels.Meta
		want error
	}{
		{"empty", nil, meta(eventmodels.TypeJobSubmitted), eventmodels.ErrMalformed},
		{"no type", good, eventmodels.Meta{}, eventmodels.ErrMalformed},
		{"unknown type", good, meta("job.teleported"), eventmodels.ErrUnknownEventType},
		{"wrong union branch", good, meta(eventmodels.TypeJobQueued), eventmodels.ErrMalformed},
		{"header/body type mismatch", mustEncodeAs(t, codec, eventmodels.TypeJobMetrics), meta(eventmodels.TypeJobMetrics), eventmodels.ErrMalformed},
		{"trailing bytes", append(append([]byte{}, good...), 0, 1, 2), meta(eventmodels.TypeJobSubmitted), eventmodels.ErrMalformed},
		{"garbage", []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}, meta(eventmodels.TypeJobSubmitted), eventmodels.ErrMalformed},
		{"huge string length", []byte{0, 0xfe, 0xff, 0xff, 0xff, 0x0f}, meta(eventmodels.TypeJobSubmitted), eventmodels.ErrMalformed},
		{"oversized", make([]byte, 5000), meta(eventmodels.TypeJobSubmitted), eventmodels.ErrTooLarge},
		{"invalid values", invalidBody, meta(eventmodels.TypeJobQueued), nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, err := codec.Decode(tc.body, tc.meta)
			var de *eventmodels.DecodeError
			if e != nil || !errors.As(err, &de) || de.ContentType != "application/avro" {
				t.Fatalf("Decode = %v, %v; want a *DecodeError", e, err)
			}
			if tc.want == nil {
				var ve *eventmodels.ValidationError
				if !errors.As(err, &ve) || !ve.Has("position") {
					t.Fatalf("Decode = %v, want *ValidationError naming position", err)
				}
				return
			}
			if !errors.Is(err, tc.want) {
				t.Fatalf("Decode = %v, want %v", err, tc.want)
			}
		})
	}
	t.Run("every truncation", func(t *testing.T) {
		for n := 0; n < len(good); n++ {
			if _, err := codec.Decode(good[:n], meta(eventmodels.TypeJobSubmitted)); err == nil {
				t.Fatalf("truncated to %d of %d bytes decoded without error", n, len(good))
			}
		}
	})
}

// mustEncodeAs encodes a job.metrics sample whose body claims another type.
func mustEncodeAs(t *testing.T, codec *schemas.AvroCodec, typ string) []byte {
	t.Helper()
	e := samples.All()[6]
	body, err := codec.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	// Rewrite the event_type string in place: same length keeps the framing.
	return []byte(strings.Replace(string(body), typ, "job.metricz", 1))
}

func TestCodecSetSelectsByContentType(t *testing.T) {
	reg := eventmodels.NewRegistry()
	set, err := schemas.NewCodecs(reg, 0)
	if err != nil {
		t.Fatal(err)
	}
	for ct, want := range map[string]string{
		"":                                "application/avro",
		"application/avro":                "application/avro",
		"application/json":                "application/json",
		"application/json; charset=utf-8": "application/json",
	} {
		c, err := set.For(ct)
		if err != nil || c.ContentType() != want {
			t.Errorf("For(%q) = %v, %v; want %s", ct, c, err, want)
		}
	}
	for _, ct := range []string{"text/xml", "application/json; ===", "application/protobuf"} {
		if _, err := set.For(ct); !errors.Is(err, eventmodels.ErrUnsupportedContentType) {
			t.Errorf("For(%q) = %v, want ErrUnsupportedContentType", ct, err)
		}
	}
}

func TestDownstreamSchema(t *testing.T) {
	reg := eventmodels.NewRegistry()
	err := reg.Register(eventmodels.TypeInfo{
		EventType: "site.calibrated", Topic: "site-events", Schema: "site-events", AvroName: "example.SiteCalibrated",
		New: func() eventmodels.Event { return &siteEvent{} },
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := schemas.NewAvroCodec(reg); err == nil {
		t.Fatal("a codec must refuse a registry whose types have no schema in its catalog")
	}
	cat, _ := schemas.Builtin()
	ext, err := cat.With("site-events", 1, `{"type":"record","name":"SiteCalibrated","namespace":"example","fields":[
		{"name":"event_id","type":{"type":"string","logicalType":"uuid"}},{"name":"event_type","type":"string"},
		{"name":"timestamp","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"correlation_id","type":{"type":"string","logicalType":"uuid"}},{"name":"user_id","type":"string"},
		{"name":"schema_version","type":"int"},{"name":"site","type":"string"},
		{"name":"tags","type":{"type":"array","items":{"type":"record","name":"Tag","fields":[{"name":"key","type":"string"},{"name":"value","type":"string"}]}}},
		{"name":"probe","type":{"type":"record","name":"Probe","fields":[{"name":"name","type":"string"},
			{"name":"settings","type":{"type":"array","items":"Tag"}}]}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := cat.Current("site-events"); ok {
		t.Fatal("With changed the original catalog")
	}
	codec := newCodec(t, reg, schemas.WithCatalog(ext))
	jsonCodec := eventmodels.NewJSONCodec(reg, 0)
	e := &siteEvent{Base: eventmodels.NewBase("site.calibrated", 1, "ops"), Site: "ALMA",
		Tags: eventmodels.LabelsOf(map[string]string{"band": "6"}), Probe: siteProbe{Name: "p1"}}
	// Labels fields of a downstream type, top level and nested, set and
	// empty: both codecs decode the same value (an empty Labels as nil).
	for _, tags := range []eventmodels.Labels{e.Tags, {}, nil} {
		for _, settings := range []eventmodels.Labels{{{Key: "gain", Value: "3"}}, {}, nil} {
			e.Tags, e.Probe.Settings = tags, settings
			body, err := codec.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := codec.Decode(body, eventmodels.Meta{EventType: "site.calibrated"})
			if err != nil {
				t.Fatal(err)
			}
			jb, err := jsonCodec.Encode(e)
			if err != nil {
				t.Fatal(err)
			}
			fromJSON, err := jsonCodec.Decode(jb, eventmodels.Meta{EventType: "site.calibrated"})
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, fromJSON) {
				t.Fatalf("tags %#v, settings %#v: Avro decoded %#v, JSON %#v", tags, settings, got, fromJSON)
			}
			if len(tags) > 0 && len(settings) > 0 && !reflect.DeepEqual(got, e) {
				t.Fatalf("got %#v, want %#v", got, e)
			}
		}
	}
}

type siteEvent struct {
	eventmodels.Base
	Site  string             `json:"site" avro:"site"`
	Tags  eventmodels.Labels `json:"tags,omitempty" avro:"tags"`
	Probe siteProbe          `json:"probe" avro:"probe"`
}

type siteProbe struct {
	Name     string             `json:"name" avro:"name"`
	Settings eventmodels.Labels `json:"settings,omitempty" avro:"settings"`
}

func (s *siteEvent) Key() string     { return s.Site }
func (s *siteEvent) Validate() error { return eventmodels.ValidateBase(&s.Base).Err() }

func FuzzAvroDecode(f *testing.F) {
	reg := eventmodels.NewRegistry()
	codec := newCodec(f, reg, schemas.WithMaxEventSize(1<<16))
	for _, e := range samples.All() {
		b, _ := codec.Encode(e)
		f.Add(b, e.Envelope().EventType, 0)
	}
	f.Add([]byte{0x02, 0x01}, eventmodels.TypeJobMetrics, 1)
	f.Fuzz(func(t *testing.T, data []byte, typ string, version int) {
		e, err := codec.Decode(data, eventmodels.Meta{EventType: typ, SchemaVersion: version})
		if err != nil {
			var de *eventmodels.DecodeError
			if e != nil || !errors.As(err, &de) {
				t.Fatalf("error %v is not a *DecodeError with a nil event", err)
			}
			return
		}
		if err := e.Validate(); err != nil {
			t.Fatalf("accepted an invalid event: %v", err)
		}
		if _, err := codec.Encode(e); err != nil {
			t.Fatalf("accepted event does not re-encode: %v", err)
		}
	})
}
