package eventmodels_test

import (
	"context"
	"fmt"
	"log"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/eventmodels"
)

// [custom-type]
// SiteCalibrated is an event of your own: the envelope (Base) and your fields.
type SiteCalibrated struct {
	eventmodels.Base
	Site   string  `json:"site" avro:"site"`
	GainDB float64 `json:"gain_db" avro:"gain_db"`
}

// Key orders the events of one site.
func (e *SiteCalibrated) Key() string { return e.Site }

// Validate checks the envelope, then your fields.
func (e *SiteCalibrated) Validate() error {
	ve := eventmodels.ValidateBase(&e.Base)
	if e.Site == "" {
		ve.Add("site", "must not be empty")
	}
	return ve.Err()
}

// [/custom-type]

// A type of your own is registered in one step and travels as JSON, with
// no schema to write. The registry given to the Bus routes it (topic
// "site-events"), encodes it and decodes it for typed handlers.
func ExampleRegister() {
	// [register]
	ctx := context.Background()
	reg := eventmodels.NewRegistry() // the built-in types, and now yours:
	if err := eventmodels.Register[*SiteCalibrated](reg, "site.calibrated", "site-events"); err != nil {
		log.Fatal(err)
	}
	backend, err := memory.New(ctx, memory.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer backend.Close()
	bus, err := events.NewBus(backend, events.WithRegistry(reg))
	if err != nil {
		log.Fatal(err)
	}

	handled := make(chan struct{})
	r := events.NewRouter()
	events.On(r, func(ctx context.Context, e *SiteCalibrated) error {
		m, _ := events.MessageFromContext(ctx)
		fmt.Println(e.Site, e.GainDB, "dB, as", m.Header(broker.HeaderContentType), "on", m.Topic)
		close(handled)
		return nil
	})
	consumer, err := bus.Subscribe(ctx, broker.Subscription{Group: "calibration-log"}, r)
	if err != nil {
		log.Fatal(err)
	}
	defer consumer.Close()

	e := &SiteCalibrated{Base: eventmodels.NewBase("site.calibrated", 1, "ops-bot"), Site: "VLA", GainDB: 3.5}
	if err := bus.Publish(ctx, e); err != nil {
		log.Fatal(err)
	}
	<-handled
	// [/register]
	// Output: VLA 3.5 dB, as application/json on site-events
}

// The same type with an Avro form. The payload record lists your fields
// only: the codec writes the six envelope fields before them, and readers
// in other languages see one record, named by the ce_dataschema header.
// Each payload field needs a Go field tagged avro:"<name>"; a missing one
// is reported when the Bus is built, naming your Go type and the tag.
func ExampleAvroPayload() {
	// [avro-payload]
	const payload = `{"type": "record", "name": "SiteCalibrated", "namespace": "org.example.calibration",
	  "fields": [{"name": "site", "type": "string"}, {"name": "gain_db", "type": "double"}]}`
	reg := eventmodels.NewRegistry()
	err := eventmodels.Register[*SiteCalibrated](reg, "site.calibrated", "site-events", eventmodels.AvroPayload(payload))
	if err != nil {
		log.Fatal(err)
	}
	bus, err := events.NewBus(nil, events.WithRegistry(reg)) // no backend: it only encodes and decodes here
	if err != nil {
		log.Fatal(err)
	}
	m, err := bus.Message(&SiteCalibrated{Base: eventmodels.NewBase("site.calibrated", 1, "ops-bot"), Site: "ALMA", GainDB: -1.5})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(m.Header(broker.HeaderContentType), m.Header(broker.HeaderDataSchema))
	back, err := bus.Decode(m)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(back.(*SiteCalibrated).Site, back.(*SiteCalibrated).GainDB)
	// [/avro-payload]

	// A payload field the Go type does not carry.
	bad := eventmodels.NewRegistry()
	_ = eventmodels.Register[*SiteCalibrated](bad, "site.calibrated", "site-events", eventmodels.AvroPayload(
		`{"type": "record", "name": "SiteCalibrated", "fields": [{"name": "site", "type": "string"}, {"name": "antenna", "type": "int"}]}`))
	_, err = events.NewBus(nil, events.WithRegistry(bad))
	fmt.Println(err)
	// Output:
	// application/avro urn:cosmic-horizons:schema:site.calibrated/v1
	// ALMA -1.5
	// events: schemas: event type "site.calibrated" (*eventmodels_test.SiteCalibrated): Avro field "antenna" has no field in Go type eventmodels_test.SiteCalibrated: tag one `avro:"antenna"`
}
