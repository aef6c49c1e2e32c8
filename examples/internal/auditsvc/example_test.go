package auditsvc_test

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/auditsvc"
)

// The auditor consumes every platform topic from the in-memory backend,
// records each event once (a redelivery is recognised), lists a job's
// trail, and `audit verify` checks the chain.
func Example() {
	dir, err := os.MkdirTemp("", "auditsvc-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	b, err := memory.New(context.Background(), memory.Config{Topics: events.PlatformTopics()})
	if err != nil {
		panic(err)
	}
	defer b.Close()
	bus, err := events.NewBus(b)
	if err != nil {
		panic(err)
	}
	svc, err := auditsvc.New(auditsvc.Config{Dir: dir, Bus: bus})
	if err != nil {
		panic(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	consumers, err := svc.Subscribe(ctx, b, "compliance-auditor", 4)
	if err != nil {
		panic(err)
	}

	submitted := eventmodels.NewJobSubmitted("ada", "job-1", eventmodels.JobSpec{
		ProjectID: "p1", Telescope: "vla", Instrument: "wideband", JobName: "calibrate", Queue: "batch",
		Resources: eventmodels.Resources{CPUCores: 4, MemoryMB: 8192, WalltimeSeconds: 3600},
	})
	completed := eventmodels.NewJobCompleted("ada", "job-1", eventmodels.Usage{CPUHours: 2, Progress: 100})
	if err := bus.Publish(ctx, submitted, completed); err != nil {
		panic(err)
	}
	if err := bus.Publish(ctx, submitted); err != nil { // published twice: recorded once
		panic(err)
	}
	// Wait until the three deliveries are handled (the demo polls Consumed
	// the same way).
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); <-tick.C {
		if st := svc.Stats(); st.Recorded+st.Duplicates == 3 {
			break
		}
	}
	st := svc.Stats()
	fmt.Println("recorded:", st.Recorded, "duplicates:", st.Duplicates)

	recs, err := svc.ByJob(ctx, "job-1")
	if err != nil {
		panic(err)
	}
	for _, r := range recs {
		fmt.Println(r.Seq, r.Topic, r.EventType)
	}

	stop() // stop the consumers before closing the service
	for _, c := range consumers {
		<-c.Done()
	}
	if err := svc.Close(); err != nil {
		panic(err)
	}
	fmt.Println("verify:", auditsvc.VerifyCommand(context.Background(), dir, io.Discard))
	// Output:
	// recorded: 2 duplicates: 1
	// 1 job-lifecycle job.submitted
	// 2 job-lifecycle job.completed
	// verify: <nil>
}
