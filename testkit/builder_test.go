package testkit_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/testkit"
	"github.com/google/uuid"
)

// everyType builds one event of each type with b's defaults.
func everyType(b *testkit.Builder) []eventmodels.Event {
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
		b := testkit.NewBuilder(seed)
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

func TestBuilderEventsSurviveTheWire(t *testing.T) {
	dec, err := broker.NewDecoder(nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	reg := eventmodels.NewRegistry()
	codecs := []eventmodels.Codec{nil, eventmodels.NewJSONCodec(reg, 0)} // nil: the bus's Avro default
	for _, codec := range codecs {
		var opts []broker.BusOption
		if codec != nil {
			opts = append(opts, broker.WithRegistry(reg), broker.WithCodec(codec))
		}
		bus, err := broker.NewBus(testkit.NewMockPublisher(), opts...)
		if err != nil {
			t.Fatal(err)
		}
		for seed := int64(0); seed < 40; seed++ {
			b := testkit.NewBuilder(seed)
			for _, e := range append(everyType(b), b.JobLifecycle("", eventmodels.StatusCompleted, 2)...) {
				m, err := bus.Message(context.Background(), e)
				if err != nil {
					t.Fatalf("%s: %v", bus.Codec().ContentType(), err)
				}
				got, err := dec.Decode(m)
				if err != nil {
					t.Fatalf("%s: decode %s: %v", bus.Codec().ContentType(), e.Envelope().EventType, err)
				}
				if !reflect.DeepEqual(got, e) {
					t.Fatalf("%s: round trip changed the event:\n got %#v\nwant %#v", bus.Codec().ContentType(), got, e)
				}
			}
		}
	}
}

func TestBuilderIsDeterministic(t *testing.T) {
	build := func(seed int64) []eventmodels.Event {
		b := testkit.NewBuilder(seed)
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
	plain := testkit.NewBuilder(7)
	plain.JobSubmitted().Build()
	wantNext := plain.JobQueued().Build()

	tuned := testkit.NewBuilder(7)
	tuned.JobSubmitted().WithJobID("j-1").WithUser("u").WithQueue("gpu").WithParameter("band", "L").
		WithCorrelationID(uuid.New()).At(time.Now()).Build()
	if got := tuned.JobQueued().Build(); !reflect.DeepEqual(got, wantNext) {
		t.Fatalf("setters on one event changed the next:\n got %+v\nwant %+v", got, wantNext)
	}
}

func TestBuilderIDsAndTimestampsIncrease(t *testing.T) {
	start := time.Date(2030, 5, 6, 7, 8, 9, 0, time.UTC)
	b := testkit.NewBuilder(1, testkit.WithStart(start), testkit.WithStep(time.Second))
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
	tiny := testkit.NewBuilder(1, testkit.WithStep(time.Nanosecond))
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

func TestBuilderSetters(t *testing.T) {
	b := testkit.NewBuilder(3)
	id, corr := uuid.MustParse("01900000-0000-7000-8000-000000000001"), uuid.MustParse("01900000-0000-7000-8000-000000000002")
	at := time.Date(2026, 2, 3, 4, 5, 6, 789_654_321, time.FixedZone("X", 3600))

	sub := b.JobSubmitted().WithJobID("j-1").WithUser("u").WithQueue("gpu").WithEventID(id).
		WithCorrelationID(corr).At(at).WithPriority(9).WithProjectID("p").WithTelescope("VLA").
		WithInstrument("WIDAR").WithJobName("n").
		With(func(e *eventmodels.JobSubmitted) { e.Spec.Parameters = nil }).WithParameter("z", "1").WithParameter("a", "2").WithParameter("z", "3").
		WithResources(eventmodels.Resources{CPUCores: 2, MemoryMB: 10, WalltimeSeconds: 60}).Build()
	if sub.JobID != "j-1" || sub.UserID != "u" || sub.Spec.Queue != "gpu" || sub.EventID != id || sub.CorrelationID != corr ||
		sub.Spec.Priority != 9 || sub.Spec.ProjectID != "p" || sub.Spec.Telescope != "VLA" || sub.Spec.Instrument != "WIDAR" ||
		sub.Spec.JobName != "n" || sub.Spec.Resources.CPUCores != 2 || sub.Key() != "j-1" {
		t.Fatalf("JobSubmitted setters not applied: %+v", sub)
	}
	if want := eventmodels.NormalizeTime(at); !sub.Timestamp.Equal(want) || sub.Timestamp.Location() != time.UTC {
		t.Fatalf("At: timestamp %v, want %v in UTC", sub.Timestamp, want)
	}
	if got := fmt.Sprint(sub.Spec.Parameters); got != "[{a 2} {z 3}]" {
		t.Fatalf("parameters %s, want sorted and replaced", got)
	}

	st := b.JobStatusChanged().WithTransition(eventmodels.StatusQueued, eventmodels.StatusRunning).WithProgress(0).
		WithMessage("m").WithNode("n1").WithJobID("j").MustBuild(t)
	if st.FromStatus != eventmodels.StatusQueued || st.ToStatus != eventmodels.StatusRunning || st.Message != "m" || st.Node != "n1" {
		t.Fatalf("JobStatusChanged setters not applied: %+v", st)
	}
	q := b.JobQueued().WithQueue("q").WithPosition(4).WithEstimatedWaitMS(9).MustBuild(t)
	if q.Queue != "q" || q.Position != 4 || q.EstimatedWaitMS != 9 {
		t.Fatalf("JobQueued setters not applied: %+v", q)
	}
	f := b.JobFailed().WithFromStatus(eventmodels.StatusQueued).WithExitCode(3).WithErrorClass(eventmodels.ErrorRejected).
		WithErrorMessage("no").WithRetryable(true).WithRuntimeMS(5).MustBuild(t)
	if f.FromStatus != eventmodels.StatusQueued || f.ExitCode != 3 || f.ErrorClass != eventmodels.ErrorRejected || !f.Retryable || f.RuntimeMS != 5 {
		t.Fatalf("JobFailed setters not applied: %+v", f)
	}
	c := b.JobCancelled().WithUser("alice").WithReason("r").MustBuild(t)
	if c.CancelledBy != "alice" || c.Reason != "r" {
		t.Fatalf("JobCancelled: cancelled_by %q should follow the user", c.CancelledBy)
	}
	if c := b.JobCancelled().WithCancelledBy("admin").WithUser("alice").Build(); c.CancelledBy != "admin" {
		t.Fatalf("JobCancelled: explicit cancelled_by %q overridden", c.CancelledBy)
	}
	a := b.Audit().WithUser("bob").WithAction("x.y").WithResource("project", "p-1").WithOutcome(eventmodels.OutcomeDenied).
		WithDetail("ip", "1.2.3.4").MustBuild(t)
	if a.Actor != "bob" || a.Key() != "p-1" || a.Outcome != eventmodels.OutcomeDenied {
		t.Fatalf("Audit setters not applied: %+v", a)
	}
	if v, _ := a.Details.Get("ip"); v != "1.2.3.4" {
		t.Fatalf("Audit detail not set: %v", a.Details)
	}
	n := b.Notification().WithJobID("").WithRecipient("ops@x").WithChannel(eventmodels.ChannelPush).
		WithSeverity(eventmodels.SeverityCritical).WithCategory("alert.lag").WithTitle("t").WithMessage("m").MustBuild(t)
	if n.Key() != "ops@x" || n.Channel != eventmodels.ChannelPush || n.Severity != eventmodels.SeverityCritical || n.Category != "alert.lag" {
		t.Fatalf("Notification setters not applied: %+v", n)
	}
	m := b.JobMetrics().WithJobID("j").WithProjectID("p").WithNode("n").WithUsage(eventmodels.Usage{CPUHours: 1}).WithProgress(50).MustBuild(t)
	if m.Usage.CPUHours != 1 || m.Usage.Progress != 50 || m.Node != "n" {
		t.Fatalf("JobMetrics setters not applied: %+v", m)
	}
	done := b.JobCompleted().WithOutputURI("s3://x").WithUsage(eventmodels.Usage{Progress: 100}).MustBuild(t)
	if done.OutputURI != "s3://x" {
		t.Fatalf("JobCompleted setters not applied: %+v", done)
	}
	h := b.SystemHealth().WithComponent("kafka").WithStatus(eventmodels.HealthUnhealthy).WithLatencyMS(3).
		WithChecks().AddCheck(eventmodels.HealthCheck{Name: "c", Status: eventmodels.HealthHealthy}).MustBuild(t)
	if h.Key() != "kafka" || len(h.Checks) != 1 || h.LatencyMS != 3 {
		t.Fatalf("SystemHealth setters not applied: %+v", h)
	}
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
	b := testkit.NewBuilder(5)
	x := b.JobSubmitted().WithQueue("").WithPriority(99).With(func(e *eventmodels.JobSubmitted) { e.Spec.Resources.CPUCores = 0 })
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
	var zero testkit.JobFailedBuilder
	if err := zero.With(nil).Build().Validate(); err == nil {
		t.Fatal("a zero event validated")
	}
}

func TestBuilderBuildReturnsIndependentCopies(t *testing.T) {
	b := testkit.NewBuilder(9)
	x := b.JobSubmitted().WithParameter("a", "1")
	first := x.Build()
	first.Spec.Parameters[0].Value = "changed"
	if second := x.Build(); second.Spec.Parameters[0].Value != "1" {
		t.Fatal("changing a built event changed the builder")
	}
	h := b.SystemHealth().WithChecks(eventmodels.HealthCheck{Name: "a", Status: eventmodels.HealthHealthy})
	one := h.Build()
	two := h.AddCheck(eventmodels.HealthCheck{Name: "b", Status: eventmodels.HealthHealthy}).Build()
	if len(one.Checks) != 1 || len(two.Checks) != 2 {
		t.Fatalf("checks shared between builds: %d and %d", len(one.Checks), len(two.Checks))
	}
}

// TestBuildersShareTheCommonMethods keeps the typed builders alike: every one
// has the envelope setters and the Build family with its own types.
func TestBuildersShareTheCommonMethods(t *testing.T) {
	b := testkit.NewBuilder(0)
	builders := []any{
		b.JobSubmitted(), b.JobQueued(), b.JobStatusChanged(), b.JobCompleted(), b.JobFailed(),
		b.JobCancelled(), b.JobMetrics(), b.Notification(), b.Audit(), b.SystemHealth(),
	}
	tbType := reflect.TypeFor[testing.TB]()
	for _, x := range builders {
		self := reflect.TypeOf(x)
		event := reflect.TypeOf(reflect.ValueOf(x).MethodByName("Build").Call(nil)[0].Interface())
		want := map[string]string{
			"WithUser":          fmt.Sprintf("func(string) %v", self),
			"WithCorrelationID": fmt.Sprintf("func(uuid.UUID) %v", self),
			"WithEventID":       fmt.Sprintf("func(uuid.UUID) %v", self),
			"At":                fmt.Sprintf("func(time.Time) %v", self),
			"With":              fmt.Sprintf("func(func(%v)) %v", event, self),
			"Build":             fmt.Sprintf("func() %v", event),
			"BuildValid":        fmt.Sprintf("func() (%v, error)", event),
			"MustBuild":         fmt.Sprintf("func(%v) %v", tbType, event),
		}
		for name, sig := range want {
			m, ok := self.MethodByName(name)
			if !ok {
				t.Errorf("%v has no %s", self, name)
				continue
			}
			if got := m.Func.Type().String(); got != fmt.Sprintf("func(%v%s", self, sig[len("func("):]) &&
				got != fmt.Sprintf("func(%v, %s", self, sig[len("func("):]) {
				t.Errorf("%v.%s is %s, want %s", self, name, got, sig)
			}
		}
	}
}

func TestJobLifecycle(t *testing.T) {
	for _, o := range outcomes {
		for _, steps := range []int{-1, 0, 1, 5} {
			t.Run(fmt.Sprintf("%s/%d", o, steps), func(t *testing.T) {
				b := testkit.NewBuilder(int64(steps) + 100)
				events := b.JobLifecycle("job-x", o, steps)
				checkLifecycle(t, events, "job-x", o, max(steps, 0))
			})
		}
	}
	b := testkit.NewBuilder(1)
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
	b := testkit.NewBuilder(11)
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
