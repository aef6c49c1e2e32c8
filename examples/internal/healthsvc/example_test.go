package healthsvc_test

import (
	"context"
	"fmt"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/broker/memory"
	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
)

// The service watches an embedded broker and publishes its health and
// alerts through a Bus on the same broker. A closed broker is an outage.
func ExampleService_Check() {
	ctx := context.Background()
	b, _ := memory.New(ctx, memory.Config{})
	sink, _ := memory.New(ctx, memory.Config{}) // where health events and alerts go
	defer sink.Close()
	bus, _ := events.NewBus(sink)
	svc, err := healthsvc.New(healthsvc.Config{
		Checkers:  map[string]broker.HealthChecker{"memory": b},
		Signals:   healthsvc.NewRecorder(healthsvc.RecorderConfig{}),
		Publisher: bus,
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	rep, _ := svc.Check(ctx)
	fmt.Println("status:", rep.Status, "ready:", rep.Ready)

	_ = b.Close()
	rep, _ = svc.Check(ctx)
	for _, a := range rep.Raised {
		fmt.Println("alert:", a.Kind, a.Subject, a.Severity)
	}
	fmt.Println("ready:", rep.Ready, rep.NotReady)
	fmt.Printf("%+v\n", svc.Stats())
	// Output:
	// status: healthy ready: true
	// alert: broker_down memory critical
	// ready: false [memory: broker: closed]
	// {Rounds:2 HealthEventsPublished:4 AlertsRaised:1 AlertsCleared:0 NotificationsPublished:1 NotificationsPending:0 NotificationsDropped:0 PublishErrors:0 HealthEventsUnconfirmed:0}
}
