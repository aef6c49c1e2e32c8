package brokertest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/internal/samples"
)

// recordOverhead is kept free under the size limit by the message "just
// under" it: Kafka counts a record's headers and varints on top of
// Message.Size.
const recordOverhead = 512

// testPoisonAtSizeLimit: a message just under the size limit, accepted by
// Publish, whose handler fails with a huge error, is dead-lettered whole
// (the error header bounded), the messages behind it on its key are
// handled, and the consumer closes at once.
func testPoisonAtSizeLimit(e *env) {
	if e.f.MaxMessageBytes <= 0 {
		e.t.Skip("Features.MaxMessageBytes not set")
	}
	topic := e.topic("poison")
	dlq := newCollector()
	e.subscribe(nil, broker.Subscription{Topic: broker.DeadLetterTopic(topic), Group: e.group("dlq")}, dlq.handler)
	ok := newCollector()
	hugeErr := errors.New(strings.Repeat("the handler explains itself at length; ", 5000))
	h := func(_ context.Context, m *broker.Message) error {
		if m.Header(hdrSeq) == "0" {
			return hugeErr
		}
		ok.add(m)
		return nil
	}
	// DrainTimeout far above the suite's timeout: a Close that waits for
	// it fails the test.
	c := e.subscribe(nil, broker.Subscription{Topic: topic, Group: e.group("g"), Retry: broker.RetryPolicy{MaxAttempts: 2},
		DrainTimeout: time.Hour}, h)

	big := msg(topic, "key-0", 0, nil)
	big.SetHeader(hdrKeySeq, "0")
	big.Body = bytes.Repeat([]byte{0xA5}, e.f.MaxMessageBytes-big.Size()-recordOverhead)
	ctx, cancel := context.WithTimeout(context.Background(), e.f.Timeout)
	defer cancel()
	if err := e.b.Publisher.Publish(ctx, big); err != nil {
		e.t.Fatalf("Publish of a %d-byte message (limit %d): %v", big.Size(), e.f.MaxMessageBytes, err)
	}
	var after []*broker.Message
	for i := 1; i <= 3; i++ {
		m := msg(topic, "key-0", i, []byte("after-"+strconv.Itoa(i)))
		m.SetHeader(hdrKeySeq, strconv.Itoa(i))
		after = append(after, m)
	}
	if err := e.b.Publisher.Publish(ctx, after...); err != nil {
		e.t.Fatalf("Publish: %v", err)
	}
	got := ok.waitCount(e.t, e.f.Timeout, 3)
	assertIncreasing(e, got)
	dl := dlq.waitCount(e.t, e.f.Timeout, 1)[0]
	if !bytes.Equal(dl.Body, big.Body) || dl.Header(broker.HeaderDLQBodySize) != "" {
		e.t.Fatalf("dead letter has a %d-byte body (x-dlq-body-size %q), want the whole %d bytes",
			len(dl.Body), dl.Header(broker.HeaderDLQBodySize), len(big.Body))
	}
	if n := len(dl.Header(broker.HeaderDLQError)); n == 0 || n > broker.MaxDeadLetterErrorBytes {
		e.t.Fatalf("x-dlq-error is %d bytes, want 1 to %d", n, broker.MaxDeadLetterErrorBytes)
	}
	if err := e.closeWithin(c); err != nil {
		e.t.Fatalf("Close: %v", err)
	}
}

// testForeignOversized: a message over the size limit, written by a
// producer outside this SDK, that fails its handler is dead-lettered
// without its body (size and SHA-256 recorded instead), and consumption
// goes on.
func testForeignOversized(e *env) {
	if e.f.PublishForeign == nil || e.f.MaxMessageBytes <= 0 {
		e.t.Skip("Features.PublishForeign not set")
	}
	topic := e.topic("foreign")
	dlq := newCollector()
	e.subscribe(nil, broker.Subscription{Topic: broker.DeadLetterTopic(topic), Group: e.group("dlq")}, dlq.handler)
	ok := newCollector()
	h := func(_ context.Context, m *broker.Message) error {
		if m.Header(hdrSeq) == "0" {
			return broker.Permanent(errors.New("too big to handle"))
		}
		ok.add(m)
		return nil
	}
	group := e.group("g")
	e.declareGroup(topic, group)
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: group}, h)
	huge := msg(topic, "key-0", 0, bytes.Repeat([]byte{0x5A}, e.f.MaxMessageBytes+broker.DeadLetterOverhead+10<<10))
	e.f.PublishForeign(e.t, huge)
	ctx, cancel := context.WithTimeout(context.Background(), e.f.Timeout)
	defer cancel()
	if err := e.b.Publisher.Publish(ctx, msg(topic, "key-0", 1, []byte("after"))); err != nil {
		e.t.Fatalf("Publish: %v", err)
	}
	ok.waitCount(e.t, e.f.Timeout, 1)
	dl := dlq.waitCount(e.t, e.f.Timeout, 1)[0]
	sum := sha256.Sum256(huge.Body)
	if len(dl.Body) != 0 || dl.Header(broker.HeaderDLQBodySize) != strconv.Itoa(len(huge.Body)) ||
		dl.Header(broker.HeaderDLQBodySHA256) != hex.EncodeToString(sum[:]) {
		e.t.Fatalf("dead letter: %d-byte body, x-dlq-body-size %q, x-dlq-body-sha256 %q; want no body, %d and the SHA-256",
			len(dl.Body), dl.Header(broker.HeaderDLQBodySize), dl.Header(broker.HeaderDLQBodySHA256), len(huge.Body))
	}
	if dl.Header(hdrSeq) != "0" || dl.Header(broker.HeaderDLQError) == "" || dl.Header(broker.HeaderDLQPermanent) != "true" {
		e.t.Fatalf("dead letter lost its headers: %v", dl.Headers)
	}
}

// testUnknownEventType: a typed handler's subscription dead-letters a
// message of an event type the registry does not know, skips (without
// dead-lettering) a known type it does not take, and handles its own.
func testUnknownEventType(e *env) {
	topic := e.topic("unknown-type")
	dlq := newCollector()
	e.subscribe(nil, broker.Subscription{Topic: broker.DeadLetterTopic(topic), Group: e.group("dlq")}, dlq.handler)
	bus, err := events.NewBus(e.b.Publisher, events.WithSource("brokertest"),
		events.WithRoute(func(eventmodels.TypeInfo, eventmodels.Event) string { return topic }))
	if err != nil {
		e.t.Fatal(err)
	}
	handled := newCollector()
	r := events.NewRouter()
	events.On(r, func(ctx context.Context, ev *eventmodels.JobCompleted) error {
		m, _ := events.MessageFromContext(ctx)
		handled.add(m)
		return nil
	})
	h, err := bus.Handler(r)
	if err != nil {
		e.t.Fatal(err)
	}
	group := e.group("g")
	e.declareGroup(topic, group)
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: group}, h)

	ctx, cancel := context.WithTimeout(context.Background(), e.f.Timeout)
	defer cancel()
	exploded := msg(topic, "job-1", 0, []byte(`{"event_type":"job.exploded"}`))
	exploded.SetHeader(broker.HeaderType, "job.exploded")
	exploded.SetHeader(broker.HeaderSpecVersion, broker.SpecVersion)
	exploded.SetHeader(broker.HeaderSource, "brokertest")
	exploded.SetHeader(broker.HeaderContentType, eventmodels.ContentTypeJSON)
	if err := e.b.Publisher.Publish(ctx, exploded); err != nil {
		e.t.Fatalf("Publish: %v", err)
	}
	var submitted, completed eventmodels.Event
	for _, ev := range samples.All() {
		switch ev.(type) {
		case *eventmodels.JobSubmitted:
			submitted = ev
		case *eventmodels.JobCompleted:
			completed = ev
		}
	}
	if err := bus.Publish(ctx, submitted, completed); err != nil {
		e.t.Fatalf("Bus.Publish: %v", err)
	}
	got := handled.waitCount(e.t, e.f.Timeout, 1)
	if got[0].Header(broker.HeaderType) != eventmodels.TypeJobCompleted {
		e.t.Fatalf("handler got %s, want only job.completed", got[0].Header(broker.HeaderType))
	}
	dlq.waitCount(e.t, e.f.Timeout, 1)
	e.publishMarker(broker.DeadLetterTopic(topic))
	dls := dlq.waitUntil(e.t, e.f.Timeout, "dead-letter marker", hasMarker)
	if len(dls) != 2 || dls[0].Header(broker.HeaderType) != "job.exploded" || dls[0].Header(broker.HeaderDLQPermanent) != "true" {
		e.t.Fatalf("dead letters %s; want only job.exploded, marked permanent, then the marker", describe(dls))
	}
	if !strings.Contains(dls[0].Header(broker.HeaderDLQError), "unknown event type") {
		e.t.Fatalf("x-dlq-error %q does not name the cause", dls[0].Header(broker.HeaderDLQError))
	}
}

// testStuckHandlerInHealth: a handler stuck on a message shows in the
// backend's Health as a message in flight whose age grows, and no longer
// once it returns.
func testStuckHandlerInHealth(e *env) {
	if e.b.Health == nil {
		e.t.Skip("Backend.Health not set")
	}
	topic := e.topic("stuck")
	group := e.group("g")
	release := make(chan struct{})
	entered := make(chan struct{}, 1)
	h := func(ctx context.Context, m *broker.Message) error {
		select {
		case entered <- struct{}{}:
		default:
		}
		select {
		case <-release:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	e.declareGroup(topic, group)
	e.subscribe(nil, broker.Subscription{Topic: topic, Group: group}, h)
	e.publishN(topic, 1, 1)
	select {
	case <-entered:
	case <-time.After(e.f.Timeout):
		e.t.Fatal("the handler was not called")
	}
	first := e.inFlight(topic, group, "one message held", func(f broker.InFlight) bool { return f.Messages >= 1 && f.OldestAge > 0 })
	e.inFlight(topic, group, "its age growing", func(f broker.InFlight) bool { return f.Messages >= 1 && f.OldestAge > first.OldestAge })
	close(release)
	e.inFlight(topic, group, "nothing held once the handler returned", func(f broker.InFlight) bool { return f.Messages == 0 && f.OldestAge == 0 })
}

// inFlight polls the backend's Health until the InFlight entry of
// topic/group satisfies cond, and returns it.
func (e *env) inFlight(topic, group, what string, cond func(broker.InFlight) bool) broker.InFlight {
	e.t.Helper()
	deadline := time.Now().Add(e.f.Timeout)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	var last []broker.InFlight
	for {
		ctx, cancel := context.WithTimeout(context.Background(), e.f.Timeout)
		r, err := e.b.Health.Health(ctx)
		cancel()
		if err != nil {
			e.t.Fatalf("Health: %v", err)
		}
		last = r.InFlight
		for _, f := range r.InFlight {
			if f.Topic == topic && f.Group == group && cond(f) {
				return f
			}
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("brokertest: timed out waiting for Health to show %s for %s/%s; InFlight %+v", what, topic, group, last)
		}
		<-tick.C
	}
}
