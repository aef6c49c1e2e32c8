package testkit_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/testkit"
)

// A job's whole life in one call: valid events sharing one correlation ID,
// keyed by the job, with increasing timestamps — the same ones for the same
// seed.
func ExampleEventBuilder_JobLifecycle() {
	b := testkit.NewEventBuilder(42)
	events := b.JobLifecycle("job-1", eventmodels.StatusCompleted, 2)
	for _, e := range events {
		env := e.Envelope()
		line := fmt.Sprintf("%s %-18s key=%s", env.Timestamp.Format("15:04:05.000"), env.EventType, e.Key())
		if s, ok := eventmodels.As[*eventmodels.JobStatusChanged](e); ok {
			line += fmt.Sprintf(" %s→%s %.0f%%", s.FromStatus, s.ToStatus, s.Progress)
		}
		fmt.Println(line)
	}
	fmt.Println("one correlation ID:", events[0].Envelope().CorrelationID == events[len(events)-1].Envelope().CorrelationID)

	// Tests of validation need invalid events: Build does not validate.
	_, err := b.JobQueued().With(func(e *eventmodels.JobQueued) { e.JobID, e.Position = "job-2", -1 }).BuildValid()
	fmt.Println(err)
	// Output:
	// 00:00:00.000 job.submitted      key=job-1
	// 00:00:00.001 job.queued         key=job-1
	// 00:00:00.002 job.status_changed key=job-1 queued→running 0%
	// 00:00:00.003 job.status_changed key=job-1 running→running 33%
	// 00:00:00.004 job.status_changed key=job-1 running→running 67%
	// 00:00:00.005 job.completed      key=job-1
	// one correlation ID: true
	// eventmodels: invalid job.queued: position: must not be negative
}

// The code under test publishes through a broker.Bus; the MockPublisher
// stands in for the backend and gives the typed events back.
func ExampleMockPublisher() {
	ctx := context.Background()
	pub := testkit.NewMockPublisher()
	bus, err := events.NewBus(pub)
	if err != nil {
		panic(err)
	}
	b := testkit.NewEventBuilder(1)

	// What the service under test would do:
	_ = bus.Publish(ctx, b.JobLifecycle("job-7", eventmodels.StatusFailed, 1)...)
	_ = bus.Publish(ctx, b.JobMetrics().With(func(e *eventmodels.JobMetrics) { e.JobID, e.Usage.Progress = "job-7", 40 }).Build())

	fmt.Println(pub.Count(), "messages on", pub.Topics())
	for _, f := range testkit.EventsOf[*eventmodels.JobFailed](pub) {
		fmt.Println("failed:", f.JobID, "from", f.FromStatus)
	}
	fmt.Println("status changes:", len(pub.EventsOfType(eventmodels.TypeJobStatusChanged)))

	// The broker is down for the next publish.
	pub.FailNext(1, errors.New("broker down"))
	err = bus.Publish(ctx, b.Notification().Build())
	fmt.Println("publish:", err, "- still", pub.Count(), "messages")
	// Output:
	// 6 messages on [job-lifecycle job-metrics]
	// failed: job-7 from running
	// status changes: 2
	// publish: broker down - still 6 messages
}

// MessageCapture is the handler of a subscription under test; WaitFor waits
// for the messages with a deadline and, when they do not come, says what is
// missing.
func ExampleMessageCapture_WaitFor() {
	pub := testkit.NewMockPublisher() // any backend's Subscribe works the same way
	capture := testkit.NewMessageCapture()
	pub.Subscribe(eventmodels.TopicJobLifecycle, capture.Handle)
	bus, _ := events.NewBus(pub)
	b := testkit.NewEventBuilder(7)
	_ = bus.Publish(context.Background(), b.JobLifecycle("job-3", eventmodels.StatusQueued, 0)...)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := capture.WaitFor(ctx, 2); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("received", capture.Count(), "in order:", capture.CheckOrderedByKey(testkit.EventTimeSeq) == nil)

	short, cancelShort := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancelShort()
	err := capture.WaitFor(short, 3)
	summary, _, _ := strings.Cut(err.Error(), "; last")
	fmt.Println(summary)
	// Output:
	// received 2 in order: true
	// testkit: got 2 of 3 messages: context deadline exceeded
}

func ExampleLatencyMeasurer() {
	var m testkit.LatencyMeasurer // safe to share between goroutines
	for i := 1; i <= 1000; i++ {
		m.Record(time.Duration(i) * time.Millisecond)
	}
	s := m.Snapshot()
	fmt.Println(s.Count, s.Min, s.Max, s.Mean)
	fmt.Println(s.P50.Round(time.Millisecond), s.P95.Round(time.Millisecond), s.P99.Round(time.Millisecond))
	// Output:
	// 1000 1ms 1s 500.5ms
	// 500ms 950ms 990ms
}
