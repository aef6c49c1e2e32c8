package events_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path"
	"strconv"
	"strings"
	"testing"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/internal/samples"
	"github.com/cosmic-horizons/events/schemas"
	"github.com/hamba/avro/v2"
)

var update = flag.Bool("update", false, "rewrite schemas/catalog.json from the registry")

// producerCatalog is the form of schemas/catalog.json.
type producerCatalog struct {
	Comment          string                      `json:"$comment"`
	SpecVersion      string                      `json:"specversion"`
	DataSchemaPrefix string                      `json:"dataschema_prefix"`
	ContentTypes     map[string]string           `json:"content_types"`
	Headers          catalogHeaders              `json:"headers"`
	Schemas          map[string]catalogSchema    `json:"schemas"`
	EventTypes       map[string]catalogEventType `json:"event_types"`
}

type catalogHeaders struct {
	Kafka map[string]string `json:"kafka"`
	AMQP  map[string]string `json:"amqp"`
}

type catalogSchema struct {
	Version int               `json:"version"`
	File    string            `json:"file"`
	Union   bool              `json:"union"`
	History map[string]string `json:"history,omitempty"`
}

type catalogEventType struct {
	Topic         string   `json:"topic"`
	Schema        string   `json:"schema"`
	SchemaVersion int      `json:"schema_version"`
	Record        string   `json:"record"`
	UnionBranch   *int     `json:"union_branch,omitempty"`
	DataSchema    string   `json:"dataschema"`
	Key           []string `json:"key"`
}

// keyFields is the key of each built-in type, as the body fields whose
// first non-empty value Key() returns. TestProducerCatalog checks it
// against Key() on every sample.
var keyFields = map[string][]string{
	eventmodels.TypeJobSubmitted:     {"job_id"},
	eventmodels.TypeJobQueued:        {"job_id"},
	eventmodels.TypeJobStatusChanged: {"job_id"},
	eventmodels.TypeJobCompleted:     {"job_id"},
	eventmodels.TypeJobFailed:        {"job_id"},
	eventmodels.TypeJobCancelled:     {"job_id"},
	eventmodels.TypeJobMetrics:       {"job_id"},
	eventmodels.TypeNotification:     {"job_id", "recipient"},
	eventmodels.TypeAudit:            {"resource.id"},
	eventmodels.TypeSystemHealth:     {"component"},
}

// buildProducerCatalog makes catalog.json from the registry and the
// embedded schemas.
func buildProducerCatalog(t *testing.T) producerCatalog {
	t.Helper()
	reg := eventmodels.NewRegistry()
	cat, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	pc := producerCatalog{
		Comment: "Generated from the event registry by `go test . -run TestProducerCatalog -update`: do not edit. " +
			"What a producer in another language needs besides the .avsc files; see docs/foreign-producers.md.",
		SpecVersion:      broker.SpecVersion,
		DataSchemaPrefix: events.DataSchemaPrefix,
		ContentTypes: map[string]string{
			"avro": eventmodels.ContentTypeAvro,
			"json": eventmodels.ContentTypeJSON,
		},
		Headers: catalogHeaders{
			Kafka: map[string]string{
				"specversion": broker.HeaderSpecVersion, "id": broker.HeaderID, "type": broker.HeaderType,
				"source": broker.HeaderSource, "time": broker.HeaderTime, "subject": broker.HeaderSubject,
				"correlationid": broker.HeaderCorrelationID, "dataschema": broker.HeaderDataSchema,
				"datacontenttype": broker.HeaderContentType,
			},
			AMQP: map[string]string{
				"specversion": "cloudEvents_specversion", "id": "cloudEvents_id", "type": "cloudEvents_type",
				"source": "cloudEvents_source", "time": "cloudEvents_time", "subject": "cloudEvents_subject",
				"correlationid": "cloudEvents_correlationid", "dataschema": "cloudEvents_dataschema",
				"datacontenttype": "ContentType property (or cloudEvents_datacontenttype)",
				"key":             "x-message-key",
			},
		},
		Schemas:    map[string]catalogSchema{},
		EventTypes: map[string]catalogEventType{},
	}
	for _, name := range cat.Names() {
		cur, _ := cat.Current(name)
		s := catalogSchema{Version: cur.Version, File: name + ".avsc", Union: cur.Avro.Type() == avro.Union}
		for _, old := range cat.Versions(name) {
			if old.Version != cur.Version {
				if s.History == nil {
					s.History = map[string]string{}
				}
				s.History[old.DataSchema()] = path.Join("history", name+".v"+strconv.Itoa(old.Version)+".avsc")
			}
		}
		pc.Schemas[name] = s
	}
	for _, ev := range samples.All() {
		info, err := reg.InfoOf(ev)
		if err != nil {
			t.Fatal(err)
		}
		cur, ok := cat.Current(info.Schema)
		if !ok {
			t.Fatalf("%s: no schema %q", info.EventType, info.Schema)
		}
		et := catalogEventType{Topic: info.Topic, Schema: info.Schema, SchemaVersion: cur.Version, Record: info.AvroName,
			DataSchema: events.DataSchemaURI(cur.DataSchema()), Key: keyFields[info.EventType]}
		if u, ok := cur.Avro.(*avro.UnionSchema); ok {
			for i, b := range u.Types() {
				if r, ok := b.(*avro.RecordSchema); ok && r.FullName() == info.AvroName {
					et.UnionBranch = &i
				}
			}
			if et.UnionBranch == nil {
				t.Fatalf("%s: record %s not in the union %s", info.EventType, info.AvroName, info.Schema)
			}
		}
		pc.EventTypes[info.EventType] = et
	}
	if len(pc.EventTypes) != len(keyFields) {
		t.Fatalf("samples cover %d event types, the key table %d", len(pc.EventTypes), len(keyFields))
	}
	return pc
}

// TestProducerCatalog: schemas/catalog.json is what the registry says
// (-update rewrites it), its key fields give Key() of every sample, its
// schema_version is what the Bus writes, and each event type's record
// is in the file it names.
func TestProducerCatalog(t *testing.T) {
	want := buildProducerCatalog(t)
	b, err := json.MarshalIndent(want, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	b = append(b, '\n')
	if *update {
		if err := os.WriteFile("schemas/catalog.json", b, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Log("wrote schemas/catalog.json")
		return
	}
	onDisk, err := os.ReadFile("schemas/catalog.json")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(onDisk, b) {
		t.Fatalf("schemas/catalog.json is out of date: run go test . -run TestProducerCatalog -update")
	}
	if !bytes.Equal(schemas.CatalogJSON(), onDisk) {
		t.Fatal("schemas.CatalogJSON is not schemas/catalog.json")
	}
	bus, _ := newBus(t)
	for _, ev := range samples.All() {
		et := want.EventTypes[ev.Envelope().EventType]
		m, err := bus.Message(ev)
		if err != nil {
			t.Fatal(err)
		}
		if m.Topic != et.Topic || m.Header(broker.HeaderDataSchema) != et.DataSchema || ev.Envelope().SchemaVersion != et.SchemaVersion {
			t.Errorf("%s: the Bus writes topic %s, %s, schema_version %d; the catalogue says %s, %s, %d", ev.Envelope().EventType,
				m.Topic, m.Header(broker.HeaderDataSchema), ev.Envelope().SchemaVersion, et.Topic, et.DataSchema, et.SchemaVersion)
		}
		var body map[string]any
		jb, _ := json.Marshal(ev)
		if err := json.Unmarshal(jb, &body); err != nil {
			t.Fatal(err)
		}
		key := ""
		for _, f := range et.Key {
			var v any = body
			for _, part := range strings.Split(f, ".") {
				v = v.(map[string]any)[part]
			}
			if s, _ := v.(string); s != "" {
				key = s
				break
			}
		}
		if key != ev.Key() || key != m.Key {
			t.Errorf("%s: key from %v is %q, Key() is %q", ev.Envelope().EventType, et.Key, key, ev.Key())
		}
		src, err := os.ReadFile(path.Join("schemas", want.Schemas[et.Schema].File))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(src), `"name": "`+et.Record[strings.LastIndex(et.Record, ".")+1:]+`"`) {
			t.Errorf("%s: record %s not in %s", ev.Envelope().EventType, et.Record, want.Schemas[et.Schema].File)
		}
	}
}
