package schemas_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/internal/samples"
	"github.com/cosmic-horizons/events/schemas"
)

// numericField is one number of an event, found by reflection: its field
// name as a *ValidationError reports it ("spec.resources.cpu_cores",
// "checks[1].value") and the settable value.
type numericField struct {
	name string
	v    reflect.Value
}

// numericFields returns every integer and floating-point field reachable
// from v (a struct): exported fields, embedded structs (the envelope),
// nested structs and the elements of slices. Arrays (uuid.UUID) and
// structs with unexported state (time.Time) are not numbers of the event
// model and are skipped. A field added to any event type is found here
// without a change to the test.
func numericFields(v reflect.Value, prefix string) []numericField {
	var out []numericField
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		fv := v.Field(i)
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			out = append(out, numericFields(fv, prefix)...)
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" {
			name = f.Name
		}
		out = append(out, numericValues(fv, prefix+name)...)
	}
	return out
}

func numericValues(v reflect.Value, name string) []numericField {
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return []numericField{{name, v}}
	case reflect.Struct:
		if v.Type() == reflect.TypeFor[time.Time]() {
			return nil
		}
		return numericFields(v, name+".")
	case reflect.Slice:
		var out []numericField
		for i := range v.Len() {
			out = append(out, numericValues(v.Index(i), fmt.Sprintf("%s[%d]", name, i))...)
		}
		return out
	}
	return nil
}

// edgeInts and edgeFloats are the values every numeric field is tried
// with, beside random ones: the bounds of Avro int and long, of the
// integers a JSON reader holding doubles reads exactly, and what JSON
// cannot write at all.
var (
	edgeInts = []int64{0, -1, 1, math.MaxInt32, math.MaxInt32 + 1, math.MinInt32, math.MinInt32 - 1,
		1<<32 + 1, 1 << 40, 1<<53 - 1, 1 << 53, math.MaxInt64, math.MinInt64}
	edgeFloats = []float64{0, math.Copysign(0, -1), -1, 1, 42.5, 100, 100.000001, math.MaxInt32, math.MaxInt32 + 1,
		math.MaxInt64, math.MaxFloat64, -math.MaxFloat64, math.SmallestNonzeroFloat64,
		math.NaN(), math.Inf(1), math.Inf(-1)}
)

// randomInt draws an integer of any magnitude: a random 64-bit value
// shifted right by 0 to 63 bits, with a random sign.
func randomInt(r *rand.Rand) int64 {
	n := int64(r.Uint64() >> r.IntN(64))
	if r.IntN(2) == 0 {
		n = -n
	}
	return n
}

// randomFloat draws a float of any magnitude and sign.
func randomFloat(r *rand.Rand) float64 {
	return (r.Float64()*2 - 1) * math.Pow(10, float64(r.IntN(40)-10))
}

// trip encodes e with c and decodes the body again.
func trip(c eventmodels.Codec, e eventmodels.Event) (eventmodels.Event, error) {
	body, err := c.Encode(e)
	if err != nil {
		return nil, fmt.Errorf("encode: %w", err)
	}
	got, err := c.Decode(body, eventmodels.Meta{EventType: e.Envelope().EventType})
	if err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	return got, nil
}

// checkAgreement round-trips e through both codecs and checks that they
// agree with each other and with Validate: a valid event arrives intact
// through both, an invalid one is refused by both (at encoding or by the
// decoder's validation), never carried as a different value.
func checkAgreement(t *testing.T, avroCodec, jsonCodec eventmodels.Codec, e eventmodels.Event, field, desc string) {
	t.Helper()
	fromAvro, avroErr := trip(avroCodec, e)
	fromJSON, jsonErr := trip(jsonCodec, e)
	verr := e.Validate()
	switch {
	case verr == nil && (avroErr != nil || jsonErr != nil):
		t.Errorf("%s: valid, but Avro: %v, JSON: %v", desc, avroErr, jsonErr)
	case verr == nil:
		if !reflect.DeepEqual(fromAvro, e) {
			t.Errorf("%s: Avro carried a different value\n got %#v\nwant %#v", desc, fromAvro, e)
		}
		if !reflect.DeepEqual(fromJSON, e) {
			t.Errorf("%s: JSON carried a different value\n got %#v\nwant %#v", desc, fromJSON, e)
		}
	default:
		if avroErr == nil || jsonErr == nil {
			t.Errorf("%s: invalid (%v), but Avro: %v (decoded %v), JSON: %v (decoded %v)", desc, verr, avroErr, fromAvro != nil, jsonErr, fromJSON != nil)
		}
		var ve *eventmodels.ValidationError
		if !errors.As(verr, &ve) || !ve.Has(field) {
			t.Errorf("%s: Validate() = %v, want a *ValidationError on %s", desc, verr, field)
		}
		for _, err := range []error{avroErr, jsonErr} {
			var dve *eventmodels.ValidationError
			if errors.As(err, &dve) && !dve.Has(field) {
				t.Errorf("%s: decoder refused %v, not naming %s", desc, err, field)
			}
		}
	}
}

// TestNumbersAgreeOnBothWires sets every numeric field of every event type,
// one at a time, to edge and random values, and checks that the Avro and
// JSON round trips both carry the value unchanged, or both refuse it, and
// that Validate is what decides.
func TestNumbersAgreeOnBothWires(t *testing.T) {
	reg := eventmodels.NewRegistry()
	avroCodec := newCodec(t, reg)
	jsonCodec := eventmodels.NewJSONCodec(reg, 0)
	r := rand.New(rand.NewPCG(11, 3))
	const randomPerField = 40
	for i, sample := range samples.All() {
		typ := sample.Envelope().EventType
		fields := numericFields(reflect.ValueOf(sample).Elem(), "")
		if len(fields) == 0 {
			t.Fatalf("%s: no numeric fields found", typ)
		}
		t.Run(typ, func(t *testing.T) {
			for k, f := range fields {
				ints := f.v.CanInt() || f.v.CanUint()
				var values []any
				if ints {
					for _, n := range edgeInts {
						values = append(values, n)
					}
					for range randomPerField {
						values = append(values, randomInt(r))
					}
				} else {
					for _, x := range edgeFloats {
						values = append(values, x)
					}
					for range randomPerField {
						values = append(values, randomFloat(r))
					}
				}
				for _, val := range values {
					e := samples.All()[i]
					fv := numericFields(reflect.ValueOf(e).Elem(), "")[k].v
					switch x := val.(type) {
					case int64:
						if fv.CanInt() {
							if fv.OverflowInt(x) {
								continue // the Go type cannot hold it: no event carries it
							}
							fv.SetInt(x)
						} else {
							if x < 0 || fv.OverflowUint(uint64(x)) {
								continue
							}
							fv.SetUint(uint64(x))
						}
					case float64:
						fv.SetFloat(x)
					}
					checkAgreement(t, avroCodec, jsonCodec, e, f.name, fmt.Sprintf("%s = %v", f.name, val))
				}
			}
		})
	}
}

// TestTimestampsAgreeOnBothWires does the same for the envelope's
// timestamp, a long on the Avro wire and RFC 3339 text in JSON (years 0 to
// 9999 only).
func TestTimestampsAgreeOnBothWires(t *testing.T) {
	reg := eventmodels.NewRegistry()
	avroCodec := newCodec(t, reg)
	jsonCodec := eventmodels.NewJSONCodec(reg, 0)
	times := []time.Time{
		time.Date(1, 1, 1, 0, 0, 0, 1_000_000, time.UTC),
		time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(1969, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
		time.Date(9999, 12, 31, 23, 59, 59, 999_000_000, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(0, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.UnixMilli(math.MaxInt64).UTC(),
		time.UnixMilli(math.MinInt64).UTC(),
	}
	for i := range samples.All() {
		for _, ts := range times {
			e := samples.All()[i]
			e.Envelope().Timestamp = ts
			checkAgreement(t, avroCodec, jsonCodec, e, "timestamp", fmt.Sprintf("%s timestamp %v", e.Envelope().EventType, ts))
		}
	}
}

// TestAvroEncoderNeverTruncates hands the Avro encoder values its int
// fields cannot carry, without validating first (as a caller skipping
// Validate, or a downstream type with laxer rules, would): encoding fails
// with ErrOutOfRange naming the field instead of writing a truncated value.
func TestAvroEncoderNeverTruncates(t *testing.T) {
	reg := eventmodels.NewRegistry()
	codec := newCodec(t, reg)
	cases := []struct {
		name  string
		field string
		set   func(e eventmodels.Event) eventmodels.Event
	}{
		{"cpu_cores 2^32+1", "spec.resources.cpu_cores", func(e eventmodels.Event) eventmodels.Event {
			e.(*eventmodels.JobSubmitted).Spec.Resources.CPUCores = 1<<32 + 1
			return e
		}},
		{"gpus 2^40", "spec.resources.gpus", func(e eventmodels.Event) eventmodels.Event {
			e.(*eventmodels.JobSubmitted).Spec.Resources.GPUs = 1 << 40
			return e
		}},
		{"priority below int", "spec.priority", func(e eventmodels.Event) eventmodels.Event {
			e.(*eventmodels.JobSubmitted).Spec.Priority = math.MinInt32 - 1
			return e
		}},
		{"position", "position", func(e eventmodels.Event) eventmodels.Event {
			e.(*eventmodels.JobQueued).Position = math.MaxInt32 + 1
			return e
		}},
		{"exit_code", "exit_code", func(e eventmodels.Event) eventmodels.Event {
			e.(*eventmodels.JobFailed).ExitCode = math.MaxInt64
			return e
		}},
		{"schema_version", "schema_version", func(e eventmodels.Event) eventmodels.Event {
			e.Envelope().SchemaVersion = math.MaxInt32 + 1
			return e
		}},
	}
	all := samples.All()
	byType := map[string]int{}
	for i, e := range all {
		byType[e.Envelope().EventType] = i
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var e eventmodels.Event
			switch {
			case strings.HasPrefix(c.field, "spec."):
				e = samples.All()[byType[eventmodels.TypeJobSubmitted]]
			case c.field == "position":
				e = samples.All()[byType[eventmodels.TypeJobQueued]]
			default:
				e = samples.All()[byType[eventmodels.TypeJobFailed]]
			}
			e = c.set(e)
			body, err := codec.Encode(e)
			if !errors.Is(err, schemas.ErrOutOfRange) || !strings.Contains(err.Error(), c.field) {
				t.Fatalf("Encode = %d bytes, %v; want ErrOutOfRange naming %s", len(body), err, c.field)
			}
		})
	}
}

// TestAvroEncoderNeverTruncatesDownstream checks the encoder's guard on a
// downstream type that validates no bound: int fields at the top level,
// in a nested record, in an array of records, behind a nullable union
// and in a map.
func TestAvroEncoderNeverTruncatesDownstream(t *testing.T) {
	reg := eventmodels.NewRegistry()
	err := reg.Register(eventmodels.TypeInfo{
		EventType: "site.counted", Topic: "site-counts", Schema: "site-counts", AvroName: "example.SiteCounted",
		New: func() eventmodels.Event { return &siteCounted{} },
	})
	if err != nil {
		t.Fatal(err)
	}
	cat, _ := schemas.Builtin()
	ext, err := cat.With("site-counts", 1, `{"type":"record","name":"SiteCounted","namespace":"example","fields":[
		{"name":"event_id","type":{"type":"string","logicalType":"uuid"}},{"name":"event_type","type":"string"},
		{"name":"timestamp","type":{"type":"long","logicalType":"timestamp-millis"}},
		{"name":"correlation_id","type":{"type":"string","logicalType":"uuid"}},{"name":"user_id","type":"string"},
		{"name":"schema_version","type":"int"},
		{"name":"count","type":"int"},
		{"name":"total","type":"long"},
		{"name":"inner","type":{"type":"record","name":"Inner","fields":[{"name":"n","type":"int"}]}},
		{"name":"items","type":{"type":"array","items":"Inner"}},
		{"name":"maybe","type":["null","Inner"],"default":null},
		{"name":"by_name","type":{"type":"map","values":"int"}}]}`)
	if err != nil {
		t.Fatal(err)
	}
	codec := newCodec(t, reg, schemas.WithCatalog(ext))
	valid := func() *siteCounted {
		return &siteCounted{Base: eventmodels.NewBase("site.counted", 1, "ops"), Count: 1, Total: 1 << 40,
			Inner: siteInner{N: 2}, Items: []siteInner{{N: 3}, {N: 4}}, Maybe: &siteInner{N: 5}, ByName: map[string]int{"a": 6}}
	}
	if _, err := trip(codec, valid()); err != nil {
		t.Fatalf("in-range event: %v", err)
	}
	cases := []struct {
		field string
		set   func(e *siteCounted)
	}{
		{"count", func(e *siteCounted) { e.Count = math.MaxInt32 + 1 }},
		{"inner.n", func(e *siteCounted) { e.Inner.N = math.MinInt32 - 1 }},
		{"items[1].n", func(e *siteCounted) { e.Items[1].N = 1 << 40 }},
		{"maybe.n", func(e *siteCounted) { e.Maybe.N = math.MaxInt64 }},
		{"by_name[a]", func(e *siteCounted) { e.ByName["a"] = 1 << 33 }},
	}
	for _, c := range cases {
		e := valid()
		c.set(e)
		if _, err := codec.Encode(e); !errors.Is(err, schemas.ErrOutOfRange) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s out of range: Encode error %v, want ErrOutOfRange naming it", c.field, err)
		}
	}
	// A nil optional record has nothing to check.
	e := valid()
	e.Maybe = nil
	if _, err := trip(codec, e); err != nil {
		t.Errorf("nil optional record: %v", err)
	}
}

type siteCounted struct {
	eventmodels.Base
	Count  int            `json:"count" avro:"count"`
	Total  int64          `json:"total" avro:"total"`
	Inner  siteInner      `json:"inner" avro:"inner"`
	Items  []siteInner    `json:"items" avro:"items"`
	Maybe  *siteInner     `json:"maybe" avro:"maybe"`
	ByName map[string]int `json:"by_name" avro:"by_name"`
}

type siteInner struct {
	N int `json:"n" avro:"n"`
}

func (s *siteCounted) Key() string     { return "site" }
func (s *siteCounted) Validate() error { return eventmodels.ValidateBase(&s.Base).Err() }

// TestDecodersRefuseControlCharacters: an event whose user_id carries a
// newline and an ANSI escape, encoded by a producer that skipped Validate,
// is refused by the decoding side of both codecs (so a consumer
// dead-letters it) with a *ValidationError naming the field.
func TestDecodersRefuseControlCharacters(t *testing.T) {
	reg := eventmodels.NewRegistry()
	codecs := []eventmodels.Codec{newCodec(t, reg), eventmodels.NewJSONCodec(reg, 0)}
	bad := []struct{ field, value string }{
		{"user_id", "alice\n\x1b[31mroot"},
		{"job_id", "job-1\r\n"},
		{"user_id", "alice\xff"},
	}
	for _, c := range codecs {
		for _, b := range bad {
			for i := range samples.All() {
				e := samples.All()[i]
				switch b.field {
				case "user_id":
					e.Envelope().UserID = b.value
				case "job_id":
					v := reflect.ValueOf(e).Elem().FieldByName("JobID")
					if !v.IsValid() {
						continue
					}
					v.SetString(b.value)
				}
				if b.value == "alice\xff" && c.ContentType() == eventmodels.ContentTypeJSON {
					continue // encoding/json writes invalid UTF-8 as U+FFFD; the bus validates before encoding
				}
				_, err := trip(c, e)
				var de *eventmodels.DecodeError
				var ve *eventmodels.ValidationError
				if !errors.As(err, &de) || !errors.As(err, &ve) || !ve.Has(b.field) {
					t.Errorf("%s %s %s=%q: %v, want a DecodeError with a ValidationError on %s", c.ContentType(), e.Envelope().EventType, b.field, b.value, err, b.field)
				}
			}
		}
	}
}
