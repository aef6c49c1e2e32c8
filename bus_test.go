package events_test

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/cloudevents/sdk-go/v2/binding/spec"
	cloudevents "github.com/cloudevents/sdk-go/v2/event"
	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/internal/samples"
	"github.com/cosmic-horizons/events/schemas"
	"github.com/hamba/avro/v2"
)

var ceTimeFormat = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

// TestBusPublishesEverySample publishes one event of each type and checks
// routing, key and every CloudEvents header.
func TestBusPublishesEverySample(t *testing.T) {
	bus, pub := newBus(t, events.WithSource("//cosmic-horizons/orchestrator"))
	evs := samples.All()
	if err := bus.Publish(context.Background(), evs...); err != nil {
		t.Fatal(err)
	}
	msgs := pub.Messages()
	if len(msgs) != len(evs) || pub.Calls() != 1 {
		t.Fatalf("%d messages in %d calls, want %d in one", len(msgs), pub.Calls(), len(evs))
	}
	reg := bus.Registry()
	codec, err := schemas.NewAvroCodec(reg)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range evs {
		m, env := msgs[i], e.Envelope()
		info, _ := reg.Lookup(env.EventType)
		if m.Topic != info.Topic || m.Key != e.Key() || m.Key == "" {
			t.Errorf("%s: topic %q key %q, want %q %q", env.EventType, m.Topic, m.Key, info.Topic, e.Key())
		}
		want := map[string]string{
			broker.HeaderSpecVersion:   "1.0",
			broker.HeaderID:            env.EventID.String(),
			broker.HeaderType:          env.EventType,
			broker.HeaderSource:        "//cosmic-horizons/orchestrator",
			broker.HeaderTime:          "2026-03-01T12:30:45.123Z",
			broker.HeaderSubject:       e.Key(),
			broker.HeaderCorrelationID: samples.Correlation.String(),
			broker.HeaderDataSchema:    "urn:cosmic-horizons:schema:" + codec.DataSchema(env.EventType),
			broker.HeaderContentType:   "application/avro",
		}
		if !reflect.DeepEqual(m.Headers.Map(), want) || len(m.Headers) != len(want) {
			t.Errorf("%s headers\n got %v\nwant %v", env.EventType, m.Headers, want)
		}
		if !ceTimeFormat.MatchString(m.Header(broker.HeaderTime)) {
			t.Errorf("%s: ce_time %q is not RFC 3339 with milliseconds", env.EventType, m.Header(broker.HeaderTime))
		}
		if at, ok := events.PublishedAt(m); !ok || !at.Equal(samples.Epoch) {
			t.Errorf("%s: PublishedAt = %v, %v", env.EventType, at, ok)
		}
	}
	if got := msgs[6].Header(broker.HeaderDataSchema); got != "urn:cosmic-horizons:schema:job-metrics/v2" {
		t.Errorf("job.metrics ce_dataschema = %q", got)
	}
}

func TestBusDefaultSourceAndTimeInUTC(t *testing.T) {
	bus, _ := newBus(t)
	cet := time.FixedZone("CET", 3600)
	e := eventmodels.NewJobQueued("u", "job-1", "q", 1, eventmodels.WithClock(func() time.Time {
		return time.Date(2026, 1, 2, 3, 4, 5, 6_000_000, cet)
	}))
	m, err := bus.Message(e)
	if err != nil {
		t.Fatal(err)
	}
	if m.Header(broker.HeaderSource) != "cosmic-horizons" || m.Header(broker.HeaderTime) != "2026-01-02T02:04:05.006Z" {
		t.Fatalf("source %q time %q", m.Header(broker.HeaderSource), m.Header(broker.HeaderTime))
	}
	if _, ok := m.Headers.Lookup(broker.HeaderTraceParent); ok {
		t.Fatal("traceparent written without a span in ctx (no SDK installed)")
	}
}

func TestBusJSONCodec(t *testing.T) {
	bus, pub := newBus(t, events.WithJSON())
	e := samples.All()[3]
	if err := bus.Publish(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	m := pub.Messages()[0]
	if m.Header(broker.HeaderContentType) != "application/json" {
		t.Fatalf("content-type %q", m.Header(broker.HeaderContentType))
	}
	if _, ok := m.Headers.Lookup(broker.HeaderDataSchema); ok {
		t.Fatal("ce_dataschema written for a JSON body")
	}
	var body map[string]any
	if err := json.Unmarshal(m.Body, &body); err != nil || body["event_type"] != "job.completed" {
		t.Fatalf("body %s: %v", m.Body, err)
	}
}

func TestBusRoute(t *testing.T) {
	bus, pub := newBus(t, events.WithRoute(func(info eventmodels.TypeInfo, e eventmodels.Event) string {
		if eventmodels.IsJobStatusChanged(e) {
			return "job-status-live"
		}
		return info.Topic
	}))
	all := samples.All()
	if err := bus.Publish(context.Background(), all[2], all[3]); err != nil {
		t.Fatal(err)
	}
	if got := []string{pub.Messages()[0].Topic, pub.Messages()[1].Topic}; !reflect.DeepEqual(got, []string{"job-status-live", "job-lifecycle"}) {
		t.Fatalf("topics %v", got)
	}
}

// TestBusRejectsInvalidEvents: nothing of the call is published.
func TestBusRejectsInvalidEvents(t *testing.T) {
	bus, pub := newBus(t)
	bad := eventmodels.NewJobQueued("u", "", "q", -1) // no job id, negative position
	err := bus.Publish(context.Background(), samples.All()[0], bad)
	if !errors.Is(err, broker.ErrInvalidMessage) {
		t.Fatalf("err = %v, want ErrInvalidMessage", err)
	}
	var ve *eventmodels.ValidationError
	if !errors.As(err, &ve) || !ve.Has("job_id") {
		t.Fatalf("err = %v, want a *ValidationError naming job_id", err)
	}
	if pub.Calls() != 0 {
		t.Fatalf("%d publish calls, want 0", pub.Calls())
	}
	if err := bus.Publish(context.Background(), nil); !errors.Is(err, broker.ErrInvalidMessage) {
		t.Fatalf("nil event: err = %v", err)
	}
	if err := bus.Publish(context.Background()); err != nil || pub.Calls() != 0 {
		t.Fatalf("empty Publish: %v, %d calls", err, pub.Calls())
	}
}

type unregistered struct{ eventmodels.Base }

func (unregistered) Key() string     { return "k" }
func (unregistered) Validate() error { return nil }

func TestBusRejectsUnregisteredType(t *testing.T) {
	bus, _ := newBus(t)
	err := bus.Publish(context.Background(), &unregistered{})
	if !errors.Is(err, broker.ErrInvalidMessage) || !errors.Is(err, eventmodels.ErrUnknownEventType) {
		t.Fatalf("err = %v", err)
	}
}

func TestBusReturnsPublisherError(t *testing.T) {
	pub := &capturePublisher{failNext: 1}
	bus, err := events.NewBus(pub)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.Publish(context.Background(), samples.All()[0]); !errors.Is(err, errPublish) {
		t.Fatalf("err = %v", err)
	}
	nobody, err := events.NewBus(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := nobody.Publish(context.Background(), samples.All()[0]); err == nil {
		t.Fatal("a Bus without a publisher published")
	}
}

// TestDecoderRoundTrip decodes what the Bus publishes, in both encodings.
func TestDecoderRoundTrip(t *testing.T) {
	reg := eventmodels.NewRegistry()
	codecs := map[string]events.Option{
		"avro": events.WithRegistry(reg),
		"json": events.WithJSON(),
	}
	d, _ := newBus(t, events.WithRegistry(reg))
	for name, opt := range codecs {
		bus, _ := newBus(t, events.WithRegistry(reg), opt)
		for _, e := range samples.All() {
			m, err := bus.Message(e)
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Decode(m)
			if err != nil {
				t.Fatalf("%s %s: %v", name, e.Envelope().EventType, err)
			}
			if !reflect.DeepEqual(got, e) {
				t.Fatalf("%s %s: decoded\n%+v\nwant\n%+v", name, e.Envelope().EventType, got, e)
			}
		}
	}
	if d.Registry() != reg {
		t.Fatal("Registry() is not the bus's registry")
	}
}

func TestDecoderErrorsArePermanent(t *testing.T) {
	bus, _ := newBus(t)
	d := bus
	queued := samples.All()[1]
	tests := []struct {
		name string
		edit func(m *broker.Message)
		is   error // also expected, besides ErrPermanent
	}{
		{"unknown content type", func(m *broker.Message) { m.SetHeader(broker.HeaderContentType, "text/plain") }, eventmodels.ErrUnsupportedContentType},
		{"unparsable content type", func(m *broker.Message) { m.SetHeader(broker.HeaderContentType, "a/b; ===") }, eventmodels.ErrUnsupportedContentType},
		{"unknown ce_type", func(m *broker.Message) { m.SetHeader(broker.HeaderType, "job.exploded") }, eventmodels.ErrUnknownEventType},
		{"ce_type of another record", func(m *broker.Message) { m.SetHeader(broker.HeaderType, "job.completed") }, eventmodels.ErrMalformed},
		{"garbage body", func(m *broker.Message) { m.Body = []byte("\xff\xfe garbage") }, eventmodels.ErrMalformed},
		{"empty body", func(m *broker.Message) { m.Body = nil }, eventmodels.ErrMalformed},
		{"ce_id mismatch", func(m *broker.Message) { m.SetHeader(broker.HeaderID, eventmodels.NewEventID().String()) }, nil},
		{"ce_dataschema names another schema", func(m *broker.Message) {
			m.SetHeader(broker.HeaderDataSchema, events.DataSchemaURI("notifications/v1"))
		}, nil},
		{"bare ce_dataschema names another schema", func(m *broker.Message) { m.SetHeader(broker.HeaderDataSchema, "job-metrics/v1") }, nil},
		{"bad ce_dataschema", func(m *broker.Message) { m.SetHeader(broker.HeaderDataSchema, "job-lifecycle") }, nil},
		{"bad ce_dataschema version", func(m *broker.Message) {
			m.SetHeader(broker.HeaderDataSchema, events.DataSchemaURI("job-lifecycle/v0"))
		}, nil},
		{"unknown schema version", func(m *broker.Message) {
			m.SetHeader(broker.HeaderDataSchema, events.DataSchemaURI("job-lifecycle/v9"))
		}, schemas.ErrUnknownSchemaVersion},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := bus.Message(queued)
			if err != nil {
				t.Fatal(err)
			}
			tt.edit(m)
			e, err := d.Decode(m)
			if e != nil || !broker.IsPermanent(err) {
				t.Fatalf("Decode = %v, %v; want a permanent error", e, err)
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("err = %v, want it to match %v", err, tt.is)
			}
		})
	}
}

// TestDecoderReadsJobMetricsV1 decodes a body a v1 producer wrote (no node
// field), with ce_dataschema in the URI and in the bare form.
func TestDecoderReadsJobMetricsV1(t *testing.T) {
	bus, _ := newBus(t)
	d := bus
	cat, err := schemas.Builtin()
	if err != nil {
		t.Fatal(err)
	}
	v1, ok := cat.Version("job-metrics", 1)
	if !ok {
		t.Fatal("no job-metrics v1 in the catalogue")
	}
	e := samples.All()[6].(*eventmodels.JobMetrics)
	for _, ds := range []string{events.DataSchemaURI("job-metrics/v1"), "job-metrics/v1"} {
		m, err := bus.Message(e)
		if err != nil {
			t.Fatal(err)
		}
		if m.Body, err = avro.Marshal(v1.Avro, e); err != nil {
			t.Fatal(err)
		}
		m.SetHeader(broker.HeaderDataSchema, ds)
		got, err := d.Decode(m)
		if err != nil {
			t.Fatalf("%s: %v", ds, err)
		}
		jm := got.(*eventmodels.JobMetrics)
		if jm.Node != "" || jm.Usage != e.Usage || jm.JobID != e.JobID || jm.EventID != e.EventID {
			t.Fatalf("%s: decoded %+v", ds, jm)
		}
	}
}

// TestCloudEventsOracle reads the headers of every sample the way the
// CloudEvents SDK's Kafka binding does (binary mode, "ce_" prefix,
// content-type) and lets the SDK validate the event.
func TestCloudEventsOracle(t *testing.T) {
	bus, _ := newBus(t)
	versions := spec.WithPrefix("ce_")
	for _, e := range samples.All() {
		m, err := bus.Message(e)
		if err != nil {
			t.Fatal(err)
		}
		v := versions.Version(m.Header(broker.HeaderSpecVersion))
		if v == nil {
			t.Fatalf("spec version %q unknown to the SDK", m.Header(broker.HeaderSpecVersion))
		}
		ctx := v.NewContext()
		for _, hdr := range m.Headers {
			k, val := hdr.Key, hdr.Value
			switch {
			case k == broker.HeaderContentType:
				err = v.AttributeFromKind(spec.DataContentType).Set(ctx, val)
			case k == broker.HeaderSpecVersion:
				continue
			case strings.HasPrefix(k, "ce_"):
				err = v.SetAttribute(ctx, k, val)
			default:
				continue
			}
			if err != nil {
				t.Fatalf("%s: header %s=%q rejected by the SDK: %v", e.Envelope().EventType, k, val, err)
			}
		}
		ev := cloudevents.Event{Context: ctx}
		if err := ev.Validate(); err != nil {
			t.Fatalf("%s: the SDK rejects the event: %v", e.Envelope().EventType, err)
		}
		env := e.Envelope()
		if ev.ID() != env.EventID.String() || ev.Type() != env.EventType || !ev.Time().Equal(env.Timestamp) ||
			ev.Subject() != e.Key() || ev.DataContentType() != "application/avro" || ev.Source() != "cosmic-horizons" ||
			ev.Extensions()["correlationid"] != env.CorrelationID.String() || !strings.HasSuffix(ev.DataSchema(), "/v"+strconv.Itoa(env.SchemaVersion)) {
			t.Fatalf("%s: SDK reads %s", env.EventType, ev.String())
		}
	}
}
