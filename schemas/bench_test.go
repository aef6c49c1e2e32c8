package schemas_test

import (
	"testing"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/internal/samples"
	"github.com/hamba/avro/v2"
)

// BenchmarkCodec measures one encode plus one decode (with validation) of
// each event type in Avro and in JSON. docs/benchmarks.md records the figures.
func BenchmarkCodec(b *testing.B) {
	reg := eventmodels.NewRegistry()
	codecs := []eventmodels.Codec{newCodec(b, reg), eventmodels.NewJSONCodec(reg, 0)}
	for _, c := range codecs {
		for _, e := range samples.All() {
			typ := e.Envelope().EventType
			meta := eventmodels.Meta{EventType: typ}
			b.Run(c.ContentType()[len("application/"):]+"/"+typ, func(b *testing.B) {
				body, _ := c.Encode(e)
				b.SetBytes(int64(len(body)))
				b.ReportAllocs()
				for b.Loop() {
					body, err := c.Encode(e)
					if err != nil {
						b.Fatal(err)
					}
					if _, err := c.Decode(body, meta); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// flatMetrics mirrors job-metrics v1 with plain Go fields: hamba/avro's best
// case, no embedded structs, no logical types, no validation.
type flatMetrics struct {
	EventID       string  `avro:"event_id"`
	EventType     string  `avro:"event_type"`
	Timestamp     int64   `avro:"timestamp"`
	CorrelationID string  `avro:"correlation_id"`
	UserID        string  `avro:"user_id"`
	SchemaVersion int     `avro:"schema_version"`
	JobID         string  `avro:"job_id"`
	ProjectID     string  `avro:"project_id"`
	CPUHours      float64 `avro:"cpu_hours"`
	GPUHours      float64 `avro:"gpu_hours"`
	MemoryPeakMB  int64   `avro:"memory_peak_mb"`
	RuntimeMS     int64   `avro:"runtime_ms"`
	QueueWaitMS   int64   `avro:"queue_wait_ms"`
	Progress      float64 `avro:"progress"`
	Node          string  `avro:"node"`
}

// BenchmarkHambaFloor is the floor under BenchmarkCodec/avro/job.metrics on
// the machine it runs on: hamba/avro's Marshal+Unmarshal of the same fields
// as a flat struct, with nothing of this module around it.
func BenchmarkHambaFloor(b *testing.B) {
	schema, err := avro.Parse(`{"type":"record","name":"M","fields":[
		{"name":"event_id","type":"string"},{"name":"event_type","type":"string"},{"name":"timestamp","type":"long"},
		{"name":"correlation_id","type":"string"},{"name":"user_id","type":"string"},{"name":"schema_version","type":"int"},
		{"name":"job_id","type":"string"},{"name":"project_id","type":"string"},{"name":"cpu_hours","type":"double"},
		{"name":"gpu_hours","type":"double"},{"name":"memory_peak_mb","type":"long"},{"name":"runtime_ms","type":"long"},
		{"name":"queue_wait_ms","type":"long"},{"name":"progress","type":"double"},{"name":"node","type":"string"}]}`)
	if err != nil {
		b.Fatal(err)
	}
	api := avro.Config{}.Freeze()
	m := flatMetrics{"0190f1c2-3b4a-7c5d-8e6f-102030405060", "job.metrics", 1772368245123, "0190f1c2-3b4a-7c5d-8e6f-102030405060",
		"astro-user-7", 2, "job-000042", "proj-vlass", 12.5, 3.25, 48000, 5400000, 90000, 64.5, "hpc-node-17"}
	b.ReportAllocs()
	for b.Loop() {
		body, err := api.Marshal(schema, &m)
		if err != nil {
			b.Fatal(err)
		}
		var out flatMetrics
		if err := api.Unmarshal(schema, body, &out); err != nil {
			b.Fatal(err)
		}
	}
}
