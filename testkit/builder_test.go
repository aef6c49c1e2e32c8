package testkit_test

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/testkit"
	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// everyType builds one event of each type with b's defaults.
func everyType(b *testkit.EventBuilder) []eventmodels.Event {
	return []eventmodels.Event{
		b.JobSubmitted().Build(), b.JobQueued().Build(), b.JobStatusChanged().Build(),
		b.JobCompleted().Build(), b.JobFailed().Build(), b.JobCancelled().Build(),
		b.JobMetrics().Build(), b.Notification().Build(), b.Audit().Build(), b.SystemHealth().Build(),
	}
}

var outcomes = []eventmodels.JobStatus{
	eventmodels.StatusSubmitted, eventmodels.StatusQueued, eventmodels.StatusRunning,
	eventmodels.StatusCompleted, eventmodels.StatusFailed, eventmodels.StatusCancelled,
}

func TestBuilderDefaultsAreValidForManySeeds(t *testing.T) {
	for seed := int64(-50); seed < 450; seed++ {
		b := testkit.NewEventBuilder(seed)
		events := append(everyType(b), b.Events(20)...)
		for _, o := range outcomes {
			events = append(events, b.JobLifecycle("", o, int(seed&7))...)
		}
		for _, e := range events {
			if err := e.Validate(); err != nil {
				t.Fatalf("seed %d: %s: %v", seed, e.Envelope().EventType, err)
			}
		}
	}
}

// TestBuilderEventsSurviveTheWire: every default event of every seed
// encodes and decodes to an equal value, as Avro (the built-in types' form)
// and as JSON.
func TestBuilderEventsSurviveTheWire(t *testing.T) {
	for _, opts := range [][]events.Option{nil, {events.WithJSON()}} {
		bus, err := events.NewBus(testkit.NewMockPublisher(), opts...)
		require.NoError(t, err)
		for seed := int64(0); seed < 40; seed++ {
			b := testkit.NewEventBuilder(seed)
			for _, e := range append(everyType(b), b.JobLifecycle("", eventmodels.StatusCompleted, 2)...) {
				m, err := bus.Message(e)
				require.NoError(t, err)
				got, err := bus.Decode(m)
				require.NoError(t, err, "decode %s (%s)", e.Envelope().EventType, m.Header(broker.HeaderContentType))
				require.Equal(t, e, got, "round trip through %s", m.Header(broker.HeaderContentType))
			}
		}
	}
}

func TestBuilderIsDeterministic(t *testing.T) {
	build := func(seed int64) []eventmodels.Event {
		b := testkit.NewEventBuilder(seed)
		out := append(everyType(b), b.Events(100)...)
		out = append(out, b.JobLifecycle("", eventmodels.StatusFailed, 3)...)
		return out
	}
	a, again := build(42), build(42)
	if !reflect.DeepEqual(a, again) {
		t.Fatal("the same seed built different events")
	}
	other := build(43)
	if a[0].Envelope().EventID == other[0].Envelope().EventID {
		t.Fatal("different seeds built the same event ID")
	}
	if reflect.DeepEqual(a[0], other[0]) {
		t.Fatal("different seeds built the same first event")
	}
}

func TestBuilderSettersDoNotShiftLaterEvents(t *testing.T) {
	plain := testkit.NewEventBuilder(7)
	plain.JobSubmitted().Build()
	wantNext := plain.JobQueued().Build()

	tuned := testkit.NewEventBuilder(7)
	tuned.JobSubmitted().With(func(e *eventmodels.JobSubmitted) { e.JobID, e.Spec.Queue = "j-1", "gpu" }).WithUser("u").
		WithCorrelationID(uuid.New()).At(time.Now()).Build()
	require.Equal(t, wantNext, tuned.JobQueued().Build(), "changes to one event changed the next")
}

func TestBuilderIDsAndTimestampsIncrease(t *testing.T) {
	start := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	b := testkit.NewEventBuilder(1, testkit.WithStart(start), testkit.WithStep(time.Second))
	if !b.Now().Equal(start) {
		t.Fatalf("Now = %v, want %v", b.Now(), start)
	}
	events := b.Events(500)
	if got := events[0].Envelope().Timestamp; !got.Equal(start) {
		t.Fatalf("first timestamp %v, want %v", got, start)
	}
	for i := 1; i < len(events); i++ {
		prev, cur := events[i-1].Envelope(), events[i].Envelope()
		if d := cur.Timestamp.Sub(prev.Timestamp); d != time.Second {
			t.Fatalf("event %d: step %v, want 1s", i, d)
		}
		if bytes.Compare(prev.EventID[:], cur.EventID[:]) >= 0 {
			t.Fatalf("event %d: ID %s not after %s", i, cur.EventID, prev.EventID)
		}
		if cur.EventID.Version() != 7 || cur.EventID.Variant() != uuid.RFC4122 {
			t.Fatalf("event %d: ID %s is not an RFC 9562 UUIDv7", i, cur.EventID)
		}
		if sec, nsec := cur.EventID.Time().UnixTime(); !time.Unix(sec, nsec).Equal(cur.Timestamp) {
			t.Fatalf("event %d: ID time %v, timestamp %v", i, time.Unix(sec, nsec), cur.Timestamp)
		}
	}
	// Many IDs in one millisecond still increase.
	prev := b.NewID()
	for i := 0; i < 10_000; i++ {
		id := b.NewID()
		if bytes.Compare(prev[:], id[:]) >= 0 {
			t.Fatalf("NewID %d: %s not after %s", i, id, prev)
		}
		prev = id
	}
	// A step below the wire's millisecond is raised to it.
	tiny := testkit.NewEventBuilder(1, testkit.WithStep(time.Nanosecond))
	a, c := tiny.JobQueued().Build(), tiny.JobQueued().Build()
	if d := c.Timestamp.Sub(a.Timestamp); d != time.Millisecond {
		t.Fatalf("step %v, want 1ms", d)
	}
	tiny.Advance(time.Hour)
	tiny.Advance(-time.Hour) // ignored
	if d := tiny.JobQueued().Build().Timestamp.Sub(c.Timestamp); d != time.Hour+time.Millisecond {
		t.Fatalf("after Advance(1h): gap %v", d)
	}
}

func TestDraftSetters(t *testing.T) {
	b := testkit.NewEventBuilder(3)
	id, corr := uuid.MustParse("01900000-0000-7000-8000-000000000001"), uuid.MustParse("01900000-0000-7000-8000-000000000002")
	at := time.Date(2026, 2, 3, 4, 5, 6, 789_654_321, time.FixedZone("X", 3600))

	sub := b.JobSubmitted().WithUser("u").WithEventID(id).WithCorrelationID(corr).At(at).
		With(func(e *eventmodels.JobSubmitted) {
			e.JobID, e.Spec.Queue, e.Spec.Priority = "j-1", "gpu", 9
			e.Spec.Parameters = eventmodels.LabelsOf(map[string]string{"z": "3", "a": "2"})
		}).MustBuild(t)
	assert.Equal(t, "j-1", sub.Key())
	assert.Equal(t, "u", sub.UserID)
	assert.Equal(t, id, sub.EventID)
	assert.Equal(t, corr, sub.CorrelationID)
	assert.Equal(t, 9, sub.Spec.Priority)
	assert.Equal(t, "[{a 2} {z 3}]", fmt.Sprint(sub.Spec.Parameters))
	want := eventmodels.NormalizeTime(at)
	assert.True(t, sub.Timestamp.Equal(want) && sub.Timestamp.Location() == time.UTC, "At: timestamp %v, want %v in UTC", sub.Timestamp, want)

	// The envelope setters reach the envelope of every type.
	for _, e := range []eventmodels.Event{
		b.JobQueued().WithUser("v").Build(), b.JobFailed().WithUser("v").Build(), b.Audit().WithUser("v").Build(),
		b.SystemHealth().WithUser("v").Build(), b.Notification().WithUser("v").Build(),
	} {
		assert.Equal(t, "v", e.Envelope().UserID, "%T", e)
	}
}

// siteCalibrated is an event type of a downstream service.
type siteCalibrated struct {
	eventmodels.Base
	Site string `json:"site"`
	Gain []float64
}

func (e *siteCalibrated) Key() string { return e.Site }
func (e *siteCalibrated) Validate() error {
	ve := eventmodels.ValidateBase(&e.Base)
	if e.Site == "" {
		ve.Add("site", "must not be empty")
	}
	return ve.Err()
}

// TestNewDraftFillsTheEnvelopeOfYourOwnTypes: a downstream type gets IDs,
// a timestamp and a user from the builder's clock, and keeps what it set.
func TestNewDraftFillsTheEnvelopeOfYourOwnTypes(t *testing.T) {
	b := testkit.NewEventBuilder(4)
	next := b.Now()
	d := testkit.NewDraft(b, &siteCalibrated{Base: eventmodels.Base{EventType: "site.calibrated", SchemaVersion: 1, UserID: "ops"}, Site: "VLA", Gain: []float64{1}})
	e := d.MustBuild(t)
	assert.NotEqual(t, uuid.Nil, e.EventID)
	assert.NotEqual(t, uuid.Nil, e.CorrelationID)
	assert.True(t, e.Timestamp.Equal(next), "timestamp %v, want the clock's %v", e.Timestamp, next)
	assert.Equal(t, "ops", e.UserID, "a user set by the caller is kept")
	assert.Equal(t, "site.calibrated", e.EventType)
	e.Gain[0] = 2
	assert.Equal(t, 1.0, d.Build().Gain[0], "a built event shares its slices with the draft")
	_, err := d.With(func(e *siteCalibrated) { e.Site = "" }).BuildValid()
	var ve *eventmodels.ValidationError
	assert.ErrorAs(t, err, &ve)
}

// fakeTB records what a helper reports instead of failing the test.
type fakeTB struct {
	testing.TB
	mu     sync.Mutex
	errors []string
	fatal  bool
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Errorf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.errors = append(f.errors, fmt.Sprintf(format, args...))
}
func (f *fakeTB) Fatalf(format string, args ...any) { f.Errorf(format, args...); f.fatal = true }

func TestBuilderBuildsInvalidEventsOnRequest(t *testing.T) {
	b := testkit.NewEventBuilder(5)
	x := b.JobSubmitted().With(func(e *eventmodels.JobSubmitted) {
		e.Spec.Queue, e.Spec.Priority, e.Spec.Resources.CPUCores = "", 99, 0
	})
	e := x.Build() // must not panic nor validate
	if e.Spec.Queue != "" || e.Spec.Priority != 99 {
		t.Fatalf("invalid values not kept: %+v", e.Spec)
	}
	_, err := x.BuildValid()
	var ve *eventmodels.ValidationError
	if !errors.As(err, &ve) || !ve.Has("spec.queue") || !ve.Has("spec.priority") || !ve.Has("spec.resources.cpu_cores") {
		t.Fatalf("BuildValid error = %v, want a ValidationError on queue, priority and cpu_cores", err)
	}
	tb := &fakeTB{}
	x.MustBuild(tb)
	if !tb.fatal || len(tb.errors) != 1 {
		t.Fatalf("MustBuild on an invalid event: fatal=%v errors=%q", tb.fatal, tb.errors)
	}
	// Invalid envelopes too, and the zero builder builds without panicking.
	z := b.Audit().WithUser("").WithEventID(uuid.Nil).At(time.Time{}).Build()
	if err := z.Validate(); err == nil {
		t.Fatal("an empty user, nil ID and zero time validated")
	}
	if err := b.JobFailed().With(func(e *eventmodels.JobFailed) { *e = eventmodels.JobFailed{} }).With(nil).Build().Validate(); err == nil {
		t.Fatal("a zero event validated")
	}
}

func TestBuilderBuildReturnsIndependentCopies(t *testing.T) {
	b := testkit.NewEventBuilder(9)
	x := b.JobSubmitted().With(func(e *eventmodels.JobSubmitted) {
		e.Spec.Parameters = eventmodels.LabelsOf(map[string]string{"a": "1"})
	})
	first := x.Build()
	first.Spec.Parameters[0].Value = "changed"
	require.Equal(t, "1", x.Build().Spec.Parameters[0].Value, "changing a built event changed the draft")
	h := b.SystemHealth().With(func(e *eventmodels.SystemHealth) {
		e.Checks = []eventmodels.HealthCheck{{Name: "a", Status: eventmodels.HealthHealthy}}
	})
	one := h.Build()
	two := h.With(func(e *eventmodels.SystemHealth) {
		e.Checks = append(e.Checks, eventmodels.HealthCheck{Name: "b", Status: eventmodels.HealthHealthy})
	}).Build()
	assert.Len(t, one.Checks, 1, "checks shared between builds")
	assert.Len(t, two.Checks, 2)
}

func TestJobLifecycle(t *testing.T) {
	for _, o := range outcomes {
		for _, steps := range []int{-1, 0, 1, 5} {
			t.Run(fmt.Sprintf("%s/%d", o, steps), func(t *testing.T) {
				b := testkit.NewEventBuilder(int64(steps) + 100)
				events := b.JobLifecycle("job-x", o, steps)
				checkLifecycle(t, events, "job-x", o, max(steps, 0))
			})
		}
	}
	b := testkit.NewEventBuilder(1)
	if got := b.JobLifecycle("j", "exploded", 3); got != nil {
		t.Fatalf("unknown outcome gave %d events, want nil", len(got))
	}
	generated := b.JobLifecycle("", eventmodels.StatusCompleted, 0)
	if k := generated[0].Key(); k == "" || generated[len(generated)-1].Key() != k {
		t.Fatalf("generated job ID %q not shared", k)
	}
}

func checkLifecycle(t *testing.T, events []eventmodels.Event, jobID string, outcome eventmodels.JobStatus, steps int) {
	t.Helper()
	want := map[eventmodels.JobStatus]int{
		eventmodels.StatusSubmitted: 1, eventmodels.StatusQueued: 2, eventmodels.StatusRunning: 3 + steps,
		eventmodels.StatusCompleted: 4 + steps, eventmodels.StatusFailed: 4 + steps, eventmodels.StatusCancelled: 4 + steps,
	}[outcome]
	if len(events) != want {
		t.Fatalf("%d events, want %d", len(events), want)
	}
	first := events[0].Envelope()
	status := eventmodels.JobStatus("")
	lastProgress := -1.0
	for i, e := range events {
		env := e.Envelope()
		if err := e.Validate(); err != nil {
			t.Fatalf("event %d: %v", i, err)
		}
		if e.Key() != jobID || env.CorrelationID != first.CorrelationID || env.UserID != first.UserID {
			t.Fatalf("event %d: key %q corr %s user %q differ from the job's", i, e.Key(), env.CorrelationID, env.UserID)
		}
		if i > 0 && !env.Timestamp.After(events[i-1].Envelope().Timestamp) {
			t.Fatalf("event %d: timestamp does not increase", i)
		}
		var next eventmodels.JobStatus
		switch e := e.(type) {
		case *eventmodels.JobSubmitted:
			next = eventmodels.StatusSubmitted
		case *eventmodels.JobQueued:
			next = eventmodels.StatusQueued
		case *eventmodels.JobStatusChanged:
			if e.FromStatus != status {
				t.Fatalf("event %d: from %s, but the job is %s", i, e.FromStatus, status)
			}
			if e.Progress <= lastProgress && e.ToStatus == eventmodels.StatusRunning && e.FromStatus == eventmodels.StatusRunning {
				t.Fatalf("event %d: progress %v does not increase", i, e.Progress)
			}
			lastProgress = e.Progress
			next = e.ToStatus
		case *eventmodels.JobCompleted:
			next = eventmodels.StatusCompleted
		case *eventmodels.JobFailed:
			if e.FromStatus != status {
				t.Fatalf("failed from %s, but the job is %s", e.FromStatus, status)
			}
			next = eventmodels.StatusFailed
		case *eventmodels.JobCancelled:
			if e.FromStatus != status {
				t.Fatalf("cancelled from %s, but the job is %s", e.FromStatus, status)
			}
			next = eventmodels.StatusCancelled
		default:
			t.Fatalf("event %d: unexpected %T", i, e)
		}
		if i > 0 && !eventmodels.CanTransition(status, next) {
			t.Fatalf("event %d: illegal %s → %s", i, status, next)
		}
		status = next
	}
	if status != outcome {
		t.Fatalf("ended %s, want %s", status, outcome)
	}
}

func TestBuilderConcurrentUse(t *testing.T) {
	b := testkit.NewEventBuilder(11)
	var mu sync.Mutex
	seen := map[uuid.UUID]bool{}
	jobs := map[string]bool{}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				e := b.JobSubmitted().Build()
				id := b.NewJobID()
				mu.Lock()
				if seen[e.EventID] || jobs[e.JobID] || jobs[id] {
					t.Errorf("duplicate ID %s / %s / %s", e.EventID, e.JobID, id)
				}
				seen[e.EventID], jobs[e.JobID], jobs[id] = true, true, true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
}
