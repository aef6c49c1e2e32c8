// Command catalog is a tour of the event catalogue: it builds one event of
// every built-in type, encodes it in JSON and Avro, decodes both again, checks
// the round trip and prints what a consumer would see on the wire.
//
//	go run ./examples/catalog
//
// It needs nothing but Go: no broker, no network.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"text/tabwriter"
	"time"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/platform"
	"github.com/cosmic-horizons/events/schemas"
	"github.com/google/uuid"
)

func main() {
	fs := flag.NewFlagSet("catalog", flag.ContinueOnError)
	fs.Usage = platform.Usage(fs, platform.Help{
		Name: "catalog",
		Doc: `is a tour of the event catalogue: it builds one event of every
built-in type, encodes it in JSON and Avro, decodes both again, checks the
round trip and prints what a consumer would see on the wire (topic, key,
CloudEvents headers, sizes, one JSON body). It needs no broker and no
network, and serves no HTTP; it takes no flags.`,
		Examples: []string{"go run ./examples/catalog"},
	})
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "catalog: unexpected arguments %q (see --help)\n", fs.Args())
		os.Exit(2)
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "catalog:", err)
		os.Exit(1)
	}
}

func run() error {
	reg := eventmodels.NewRegistry()
	codecs, err := schemas.NewCodecs(reg, 0)
	if err != nil {
		return err
	}
	avroCodec, _ := codecs.For(eventmodels.ContentTypeAvro)
	jsonCodec, _ := codecs.For(eventmodels.ContentTypeJSON)

	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT TYPE\tTOPIC\tKEY\tDATASCHEMA\tAVRO B\tJSON B\tROUND TRIP")
	var firstJSON []byte
	for _, e := range sampleEvents() {
		typ := e.Envelope().EventType
		info, _ := reg.Lookup(typ)
		a, err := avroCodec.Encode(e)
		if err != nil {
			return fmt.Errorf("%s: avro: %w", typ, err)
		}
		j, err := jsonCodec.Encode(e)
		if err != nil {
			return fmt.Errorf("%s: json: %w", typ, err)
		}
		fromAvro, err := avroCodec.Decode(a, eventmodels.Meta{EventType: typ})
		if err != nil {
			return fmt.Errorf("%s: avro decode: %w", typ, err)
		}
		fromJSON, err := jsonCodec.Decode(j, eventmodels.Meta{})
		if err != nil {
			return fmt.Errorf("%s: json decode: %w", typ, err)
		}
		ok := reflect.DeepEqual(fromAvro, e) && reflect.DeepEqual(fromJSON, e)
		if !ok {
			return fmt.Errorf("%s: round trip changed the event", typ)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", typ, info.Topic, e.Key(), avroCodec.DataSchema(typ), len(a), len(j), "ok")
		if firstJSON == nil {
			firstJSON = j
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var pretty map[string]any
	_ = json.Unmarshal(firstJSON, &pretty)
	out, _ := json.MarshalIndent(pretty, "", "  ")
	fmt.Printf("\nA job.submitted event in JSON:\n%s\n", out)

	bad := sampleEvents()[2].(*eventmodels.JobStatusChanged)
	bad.FromStatus, bad.ToStatus, bad.UserID = eventmodels.StatusCompleted, eventmodels.StatusRunning, ""
	fmt.Printf("\nAn illegal event is refused with every broken field:\n  %v\n", bad.Validate())
	return nil
}

// epoch is the fixed time the sample events carry.
var epoch = time.Date(2026, 3, 1, 12, 30, 45, 123_000_000, time.UTC)

// correlation is the correlation ID every sample event shares.
var correlation = uuid.MustParse("0190f1c2-3b4a-7c5d-8e6f-102030405060")

// sampleEvents returns one event of each built-in type, every field filled
// in, in registry order of the job lifecycle, then metrics, notification,
// audit and health. Each call returns new events.
func sampleEvents() []eventmodels.Event {
	opts := []eventmodels.Option{eventmodels.WithClock(func() time.Time { return epoch }), eventmodels.WithCorrelationID(correlation)}
	const user, job = "astro-user-7", "job-000042"
	metrics := eventmodels.NewJobMetrics(user, job, "proj-vlass", eventmodels.Usage{
		CPUHours: 12.5, GPUHours: 3.25, MemoryPeakMB: 48_000,
		RuntimeMS: 5_400_000, QueueWaitMS: 90_000, Progress: 64.5,
	}, opts...)
	metrics.Node = "hpc-node-17"
	completed := eventmodels.NewJobCompleted(user, job, eventmodels.Usage{
		CPUHours: 16, GPUHours: 4, MemoryPeakMB: 51_200, RuntimeMS: 7_200_000, QueueWaitMS: 90_000, Progress: 100,
	}, opts...)
	completed.OutputURI = "s3://cosmic/results/job-000042/"
	failed := eventmodels.NewJobFailed(user, job, eventmodels.StatusRunning, eventmodels.ErrorOutOfMemory, "process killed: memory limit 64 GiB exceeded", opts...)
	failed.ExitCode, failed.Retryable, failed.RuntimeMS = 137, true, 1_800_000
	changed := eventmodels.NewJobStatusChanged(user, job, eventmodels.StatusRunning, eventmodels.StatusRunning, 42.5, opts...)
	changed.Message, changed.Node = "imaging pass 2 of 5", "hpc-node-17"
	queued := eventmodels.NewJobQueued(user, job, "gpu-large", 3, opts...)
	queued.EstimatedWaitMS = 120_000
	note := eventmodels.NewNotification(user, "astro-user-7@example.org", eventmodels.ChannelEmail, eventmodels.SeverityInfo,
		"Job job-000042 completed", "Your imaging job finished in 2h0m; results are ready.", opts...)
	note.Category, note.JobID = "job.completed", job
	audit := eventmodels.NewAudit(user, "job.submit", eventmodels.Resource{Type: "job", ID: job}, eventmodels.OutcomeSuccess, opts...)
	audit.Details = eventmodels.LabelsOf(map[string]string{"ip": "10.1.2.3", "client": "cli/2.1"})
	return []eventmodels.Event{
		eventmodels.NewJobSubmitted(user, job, eventmodels.JobSpec{
			ProjectID: "proj-vlass", Telescope: "VLA", Instrument: "WIDAR", JobName: "vlass-epoch3-tile-17",
			Queue: "gpu-large", Priority: 5,
			Resources:  eventmodels.Resources{CPUCores: 32, GPUs: 2, MemoryMB: 65_536, WalltimeSeconds: 14_400},
			Parameters: eventmodels.LabelsOf(map[string]string{"field": "T17", "band": "S", "ünïcode": "✓"}),
		}, opts...),
		queued,
		changed,
		completed,
		failed,
		eventmodels.NewJobCancelled(user, job, eventmodels.StatusQueued, "superseded by job-000043", opts...),
		metrics,
		note,
		audit,
		eventmodels.NewSystemHealth("health-service", "kafka", eventmodels.HealthDegraded, 4.75, []eventmodels.HealthCheck{
			{Name: "brokers_reachable", Status: eventmodels.HealthHealthy, Value: 3},
			{Name: "consumer_lag.metrics", Status: eventmodels.HealthDegraded, Message: "lag 1200 > 1000", Value: 1200},
		}, opts...),
	}
}
