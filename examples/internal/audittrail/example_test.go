package audittrail_test

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/audittrail"
)

// The auditor records each consumed event once, lists a job's trail, and
// `audit verify` checks the chain.
func Example() {
	dir, err := os.MkdirTemp("", "audittrail-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	clock := func() time.Time { return time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC) }
	tr, err := audittrail.Open(dir, audittrail.Clock(clock))
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	codec := eventmodels.NewJSONCodec(eventmodels.NewRegistry(), 0)
	for _, ev := range []eventmodels.Event{
		eventmodels.NewJobSubmitted("ada", "job-1", eventmodels.JobSpec{ProjectID: "p1", JobName: "calibrate"}),
		eventmodels.NewJobCompleted("ada", "job-1", eventmodels.Usage{CPUHours: 2, Progress: 100}),
	} {
		e, err := audittrail.NewEntry(eventmodels.TopicJobLifecycle, ev, codec)
		if err != nil {
			panic(err)
		}
		first, _ := tr.Append(ctx, e)
		again, _ := tr.Append(ctx, e) // a redelivery
		fmt.Println(e.EventType, "appended:", first, "redelivery appended:", again)
	}
	recs, _ := tr.ByJob(ctx, "job-1")
	for _, r := range recs {
		fmt.Println(r.Seq, r.EventType, r.JobID)
	}
	if err := tr.Close(); err != nil {
		panic(err)
	}
	rep, err := audittrail.VerifyDir(ctx, dir)
	if err != nil {
		panic(err)
	}
	fmt.Println("intact:", rep.OK(), "records:", rep.Records, "segments:", rep.Segments)
	// Output:
	// job.submitted appended: true redelivery appended: false
	// job.completed appended: true redelivery appended: false
	// 1 job.submitted job-1
	// 2 job.completed job-1
	// intact: true records: 2 segments: [segment-2026-11-26.jsonl]
}
