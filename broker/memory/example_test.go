package memory_test

import (
	"context"
	"fmt"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
)

// A service publishes job events and another consumes them in one process:
// the group "notifier" receives every message of the topic, each key in
// publish order, and the broker drains the consumer on Close.
func Example() {
	ctx := context.Background()
	b, err := memory.New(ctx, memory.Config{})
	if err != nil {
		panic(err)
	}
	defer b.Close()

	done := make(chan struct{})
	seen := 0
	_, err = b.Subscribe(ctx, broker.Subscription{Topic: "job-lifecycle", Group: "notifier"},
		func(ctx context.Context, m *broker.Message) error {
			fmt.Printf("%s %s: %s\n", m.Key, m.Header(broker.HeaderType), m.Body)
			if seen++; seen == 3 {
				close(done)
			}
			return nil
		})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, status := range []string{"submitted", "queued", "completed"} {
		err := b.Publish(ctx, &broker.Message{
			Topic:   "job-lifecycle",
			Key:     "job-42",
			Headers: broker.Headers{{Key: broker.HeaderType, Value: "job." + status}},
			Body:    []byte("job-42 is " + status),
		})
		if err != nil {
			fmt.Println(err)
			return
		}
	}
	<-done
	// Output:
	// job-42 job.submitted: job-42 is submitted
	// job-42 job.queued: job-42 is queued
	// job-42 job.completed: job-42 is completed
}
