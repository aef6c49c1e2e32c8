package schemas_test

import (
	"fmt"
	"time"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/schemas"
)

// The README's quick start: build, validate, encode and decode an event.
func ExampleNewCodecs() {
	// [codecs]
	reg := eventmodels.NewRegistry()
	codecs, err := schemas.NewCodecs(reg, 0)
	if err != nil {
		panic(err)
	}
	e := eventmodels.NewJobSubmitted("astro-user-7", "job-42", eventmodels.JobSpec{
		ProjectID: "proj-vlass", Telescope: "VLA", Queue: "gpu-large",
		Resources: eventmodels.Resources{CPUCores: 32, GPUs: 2, MemoryMB: 65536, WalltimeSeconds: 14400},
	}, eventmodels.WithClock(func() time.Time { return time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC) }))
	if err := e.Validate(); err != nil {
		panic(err)
	}
	body, err := codecs.Default().Encode(e)
	if err != nil {
		panic(err)
	}
	got, err := codecs.Default().Decode(body, eventmodels.Meta{EventType: e.EventType})
	if err != nil {
		panic(err)
	}
	if s, ok := eventmodels.As[*eventmodels.JobSubmitted](got); ok {
		fmt.Println(s.JobID, s.Spec.Queue, s.Timestamp.Format(time.RFC3339))
	}
	fmt.Println(codecs.Default().ContentType(), codecs.Default().DataSchema(e.EventType))
	// [/codecs]
	// Output:
	// job-42 gpu-large 2026-03-01T00:00:00Z
	// application/avro job-lifecycle/v1
}

// A body that is not what it claims to be is a typed error, never a panic.
func ExampleAvroCodec_Decode_badInput() {
	codec, _ := schemas.NewAvroCodec(eventmodels.NewRegistry())
	_, err := codec.Decode([]byte{0x02, 0xff}, eventmodels.Meta{EventType: "job.queued"})
	fmt.Println(err)
	_, err = codec.Decode([]byte{0}, eventmodels.Meta{EventType: "job.teleported"})
	fmt.Println(err)
	// Output:
	// decode application/avro job.queued: eventmodels: malformed event: reading long: EOF
	// decode application/avro job.teleported: eventmodels: unknown event type "job.teleported"
}
