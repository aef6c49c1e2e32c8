package eventmodels_test

import (
	"errors"
	"math"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/internal/samples"
	"github.com/google/uuid"
)

func TestSamplesAreValid(t *testing.T) {
	reg := eventmodels.NewRegistry()
	seen := map[string]bool{}
	for _, e := range samples.All() {
		typ := e.Envelope().EventType
		if err := e.Validate(); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
		if _, err := reg.InfoOf(e); err != nil {
			t.Errorf("%s: %v", typ, err)
		}
		seen[typ] = true
	}
	if len(seen) != len(reg.Types()) {
		t.Fatalf("samples cover %d types, registry has %d", len(seen), len(reg.Types()))
	}
}

func TestConstructorFillsEnvelope(t *testing.T) {
	at := time.Date(2026, 5, 4, 3, 2, 1, 987_654_321, time.FixedZone("CEST", 2*3600))
	corr := eventmodels.NewCorrelationID()
	e := eventmodels.NewJobQueued("u1", "j1", "batch", 0, eventmodels.WithClock(func() time.Time { return at }), eventmodels.WithCorrelationID(corr))
	b := e.Envelope()
	if b.EventType != eventmodels.TypeJobQueued || b.UserID != "u1" || b.CorrelationID != corr || b.SchemaVersion != eventmodels.JobLifecycleSchemaVersion {
		t.Fatalf("envelope not filled: %+v", b)
	}
	want := time.Date(2026, 5, 4, 1, 2, 1, 987_000_000, time.UTC)
	if !b.Timestamp.Equal(want) || b.Timestamp.Location() != time.UTC {
		t.Fatalf("timestamp %v, want %v in UTC at ms precision", b.Timestamp, want)
	}
	if b.EventID.Version() != 7 {
		t.Fatalf("event id version %d, want 7", b.EventID.Version())
	}
	other := eventmodels.NewJobQueued("u1", "j1", "batch", 0)
	if other.CorrelationID == corr || other.CorrelationID == uuid.Nil || other.EventID == b.EventID {
		t.Fatal("constructor must generate fresh ids")
	}
}

func TestEventIDsAreTimeOrdered(t *testing.T) {
	ids := make([]string, 1000)
	for i := range ids {
		ids[i] = eventmodels.NewEventID().String()
	}
	if !sort.StringsAreSorted(ids) {
		t.Fatal("UUIDv7 strings created in sequence must sort in creation order")
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Fatalf("duplicate id %s", id)
		}
		seen[id] = true
	}
}

func TestKeys(t *testing.T) {
	for _, e := range samples.All() {
		var want string
		switch v := e.(type) {
		case *eventmodels.Audit:
			want = v.Resource.ID
		case *eventmodels.SystemHealth:
			want = v.Component
		default:
			want = "job-000042"
		}
		if got := e.Key(); got != want {
			t.Errorf("%s: Key() = %q, want %q", e.Envelope().EventType, got, want)
		}
	}
	n := eventmodels.NewNotification("u", "ops@example.org", eventmodels.ChannelLog, eventmodels.SeverityWarning, "lag", "")
	if n.Key() != "ops@example.org" {
		t.Errorf("notification without job: Key() = %q, want recipient", n.Key())
	}
}

func TestTypeGuards(t *testing.T) {
	guards := map[string]func(eventmodels.Event) bool{
		eventmodels.TypeJobSubmitted:     eventmodels.IsJobSubmitted,
		eventmodels.TypeJobQueued:        eventmodels.IsJobQueued,
		eventmodels.TypeJobStatusChanged: eventmodels.IsJobStatusChanged,
		eventmodels.TypeJobCompleted:     eventmodels.IsJobCompleted,
		eventmodels.TypeJobFailed:        eventmodels.IsJobFailed,
		eventmodels.TypeJobCancelled:     eventmodels.IsJobCancelled,
		eventmodels.TypeJobMetrics:       eventmodels.IsJobMetrics,
		eventmodels.TypeNotification:     eventmodels.IsNotification,
		eventmodels.TypeAudit:            eventmodels.IsAudit,
		eventmodels.TypeSystemHealth:     eventmodels.IsSystemHealth,
	}
	for _, e := range samples.All() {
		for typ, guard := range guards {
			if got, want := guard(e), typ == e.Envelope().EventType; got != want {
				t.Errorf("guard for %s on %s = %v", typ, e.Envelope().EventType, got)
			}
		}
	}
	var e eventmodels.Event = samples.All()[3]
	if c, ok := eventmodels.As[*eventmodels.JobCompleted](e); !ok || c.JobID != "job-000042" {
		t.Fatal("As[*JobCompleted] failed on a JobCompleted")
	}
	if _, ok := eventmodels.As[*eventmodels.JobFailed](e); ok {
		t.Fatal("As[*JobFailed] succeeded on a JobCompleted")
	}
	if !eventmodels.IsTerminal(e) || !eventmodels.IsJobEvent(e) || eventmodels.IsTerminal(samples.All()[0]) || eventmodels.IsJobEvent(samples.All()[6]) {
		t.Fatal("IsTerminal/IsJobEvent wrong")
	}
}

func TestStatusAfter(t *testing.T) {
	want := []eventmodels.JobStatus{
		eventmodels.StatusSubmitted, eventmodels.StatusQueued, eventmodels.StatusRunning,
		eventmodels.StatusCompleted, eventmodels.StatusFailed, eventmodels.StatusCancelled,
	}
	for i, e := range samples.All() {
		got, ok := eventmodels.StatusAfter(e)
		if i < len(want) {
			if !ok || got != want[i] {
				t.Errorf("%s: StatusAfter = %q, %v; want %q", e.Envelope().EventType, got, ok, want[i])
			}
		} else if ok {
			t.Errorf("%s: StatusAfter = %q for an event outside the lifecycle", e.Envelope().EventType, got)
		}
	}
}

func TestCanTransition(t *testing.T) {
	legal := map[string]bool{
		"submitted>queued": true, "submitted>failed": true, "submitted>cancelled": true,
		"queued>running": true, "queued>failed": true, "queued>cancelled": true,
		"running>running": true, "running>completed": true, "running>failed": true, "running>cancelled": true,
	}
	all := append(eventmodels.JobStatuses(), "bogus", "")
	for _, from := range all {
		for _, to := range all {
			want := legal[string(from)+">"+string(to)]
			if got := eventmodels.CanTransition(from, to); got != want {
				t.Errorf("CanTransition(%q, %q) = %v, want %v", from, to, got, want)
			}
		}
	}
	for _, s := range eventmodels.JobStatuses() {
		if s.Terminal() != (s == "completed" || s == "failed" || s == "cancelled") {
			t.Errorf("%s.Terminal() wrong", s)
		}
	}
}

// TestValidationReportsEveryField breaks several fields of each type at once
// and expects every one of them in a single *ValidationError.
func TestValidationReportsEveryField(t *testing.T) {
	cases := []struct {
		name   string
		event  eventmodels.Event
		break_ func(eventmodels.Event)
		fields []string
	}{
		{"envelope", samples.All()[1], func(e eventmodels.Event) {
			b := e.Envelope()
			b.EventID, b.CorrelationID, b.UserID, b.SchemaVersion, b.Timestamp = uuid.Nil, uuid.Nil, " ", 0, time.Time{}
		}, []string{"event_id", "correlation_id", "user_id", "schema_version", "timestamp"}},
		{"wrong type", samples.All()[1], func(e eventmodels.Event) { e.Envelope().EventType = "job.completed" }, []string{"event_type"}},
		{"submitted", samples.All()[0], func(e eventmodels.Event) {
			s := e.(*eventmodels.JobSubmitted)
			s.JobID, s.Spec.ProjectID, s.Spec.Queue, s.Spec.Priority = "", "", "", 11
			s.Spec.Resources = eventmodels.Resources{GPUs: -1}
			s.Spec.Telescope = strings.Repeat("x", 300)
		}, []string{"job_id", "spec.project_id", "spec.queue", "spec.priority", "spec.resources.cpu_cores", "spec.resources.gpus", "spec.resources.memory_mb", "spec.resources.walltime_seconds", "spec.telescope"}},
		{"queued", samples.All()[1], func(e eventmodels.Event) {
			q := e.(*eventmodels.JobQueued)
			q.Position, q.EstimatedWaitMS, q.JobID = -1, -5, strings.Repeat("j", 129)
		}, []string{"position", "estimated_wait_ms", "job_id"}},
		{"illegal transition", samples.All()[2], func(e eventmodels.Event) {
			s := e.(*eventmodels.JobStatusChanged)
			s.FromStatus, s.ToStatus, s.Progress = eventmodels.StatusCompleted, eventmodels.StatusRunning, 101
		}, []string{"to_status", "progress"}},
		{"unknown status", samples.All()[2], func(e eventmodels.Event) {
			s := e.(*eventmodels.JobStatusChanged)
			s.FromStatus, s.ToStatus = "paused", "resumed"
		}, []string{"from_status", "to_status"}},
		{"completed", samples.All()[3], func(e eventmodels.Event) {
			c := e.(*eventmodels.JobCompleted)
			c.ExitCode, c.Usage.RuntimeMS, c.Usage.CPUHours = 1, -1, -2
		}, []string{"exit_code", "usage.runtime_ms", "usage.cpu_hours"}},
		{"failed", samples.All()[4], func(e eventmodels.Event) {
			f := e.(*eventmodels.JobFailed)
			f.FromStatus, f.ErrorClass, f.ErrorMessage = eventmodels.StatusCompleted, "cosmic-ray", ""
		}, []string{"from_status", "error_class", "error_message"}},
		{"cancelled", samples.All()[5], func(e eventmodels.Event) {
			c := e.(*eventmodels.JobCancelled)
			c.FromStatus, c.CancelledBy = eventmodels.StatusCancelled, ""
		}, []string{"from_status", "cancelled_by"}},
		{"metrics", samples.All()[6], func(e eventmodels.Event) {
			m := e.(*eventmodels.JobMetrics)
			m.ProjectID, m.Usage.MemoryPeakMB, m.Usage.QueueWaitMS = "", -1, -1
			m.Usage.GPUHours = nan()
			m.Usage.Progress = nan()
		}, []string{"project_id", "usage.memory_peak_mb", "usage.queue_wait_ms", "usage.gpu_hours", "usage.progress"}},
		{"beyond the wire", samples.All()[0], func(e eventmodels.Event) {
			s := e.(*eventmodels.JobSubmitted)
			s.SchemaVersion, s.Timestamp = math.MaxInt32+1, time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)
			s.Spec.Resources = eventmodels.Resources{CPUCores: 1<<32 + 1, GPUs: 1 << 40, MemoryMB: 1 << 53, WalltimeSeconds: math.MaxInt64}
		}, []string{"schema_version", "timestamp", "spec.resources.cpu_cores", "spec.resources.gpus", "spec.resources.memory_mb", "spec.resources.walltime_seconds"}},
		{"failed beyond the wire", samples.All()[4], func(e eventmodels.Event) {
			f := e.(*eventmodels.JobFailed)
			f.ExitCode, f.RuntimeMS = math.MinInt32-1, 1<<53
		}, []string{"exit_code", "runtime_ms"}},
		{"infinite usage", samples.All()[6], func(e eventmodels.Event) {
			m := e.(*eventmodels.JobMetrics)
			m.Usage.CPUHours, m.Usage.GPUHours, m.Usage.Progress = math.Inf(1), math.Inf(-1), math.Inf(1)
		}, []string{"usage.cpu_hours", "usage.gpu_hours", "usage.progress"}},
		{"health not finite", samples.All()[9], func(e eventmodels.Event) {
			h := e.(*eventmodels.SystemHealth)
			h.LatencyMS, h.Checks[0].Value, h.Checks[1].Value = math.Inf(1), nan(), math.Inf(-1)
		}, []string{"latency_ms", "checks[0].value", "checks[1].value"}},
		{"notification", samples.All()[7], func(e eventmodels.Event) {
			n := e.(*eventmodels.Notification)
			n.Recipient, n.Channel, n.Severity, n.Title = "", "pigeon", "meh", ""
		}, []string{"recipient", "channel", "severity", "title"}},
		{"audit", samples.All()[8], func(e eventmodels.Event) {
			a := e.(*eventmodels.Audit)
			a.Actor, a.Action, a.Resource, a.Outcome = "", "", eventmodels.Resource{}, "maybe"
		}, []string{"actor", "action", "resource.type", "resource.id", "outcome"}},
		{"health", samples.All()[9], func(e eventmodels.Event) {
			h := e.(*eventmodels.SystemHealth)
			h.Component, h.Status, h.LatencyMS = "", "fine", -1
			h.Checks = append(h.Checks, eventmodels.HealthCheck{Status: "odd"})
		}, []string{"component", "status", "latency_ms", "checks[2].name", "checks[2].status"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tc.break_(tc.event)
			err := tc.event.Validate()
			var ve *eventmodels.ValidationError
			if !errors.As(err, &ve) {
				t.Fatalf("Validate() = %v, want *ValidationError", err)
			}
			for _, f := range tc.fields {
				if !ve.Has(f) {
					t.Errorf("missing field %q in %v", f, ve)
				}
			}
			if len(ve.Fields) != len(tc.fields) {
				t.Errorf("got %d field errors, want %d: %v", len(ve.Fields), len(tc.fields), ve)
			}
		})
	}
}

func nan() float64 { var z float64; return z / z }

func TestJobSpecValidate(t *testing.T) {
	spec := samples.All()[0].(*eventmodels.JobSubmitted).Spec
	if err := spec.Validate(); err != nil {
		t.Fatal(err)
	}
	spec.Resources.CPUCores = 0
	var ve *eventmodels.ValidationError
	if err := spec.Validate(); !errors.As(err, &ve) || !ve.Has("resources.cpu_cores") {
		t.Fatalf("Validate() = %v", err)
	}
}

// downstream is an event type a service defines for itself.
type downstream struct {
	eventmodels.Base
	Site string `json:"site"`
}

func (d *downstream) Key() string { return d.Site }
func (d *downstream) Validate() error {
	ve := eventmodels.ValidateBase(&d.Base)
	if d.Site == "" {
		ve.Add("site", "must not be empty")
	}
	return ve.Err()
}

func TestRegistryDownstreamTypes(t *testing.T) {
	reg := eventmodels.NewRegistry()
	info := eventmodels.TypeInfo{EventType: "site.calibrated", Topic: "site-events", New: func() eventmodels.Event { return new(downstream) }}
	if err := reg.Register(info); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(info); !errors.Is(err, eventmodels.ErrDuplicateType) {
		t.Fatalf("second Register = %v, want ErrDuplicateType", err)
	}
	if _, ok := eventmodels.NewRegistry().Lookup("site.calibrated"); ok {
		t.Fatal("registration leaked into another registry")
	}
	for _, bad := range []eventmodels.TypeInfo{
		{Topic: "t", New: info.New},
		{EventType: "x", New: info.New},
		{EventType: "x", Topic: "t"},
		{EventType: "x", Topic: "t", New: func() eventmodels.Event { return nil }},
		{EventType: "x", Topic: "t", Schema: "s", New: info.New},
		{EventType: "y", Topic: "t", New: info.New}, // same Go type as site.calibrated
	} {
		if err := reg.Register(bad); err == nil {
			t.Errorf("Register(%+v) succeeded", bad)
		}
	}
	if got := reg.Topics(); !reflect.DeepEqual(got, []string{"audit-trail", "job-lifecycle", "job-metrics", "notifications", "site-events", "system-health"}) {
		t.Fatalf("Topics() = %v", got)
	}

	codec := eventmodels.NewJSONCodec(reg, 0)
	e := &downstream{Base: eventmodels.NewBase("site.calibrated", 1, "ops"), Site: "VLA"}
	body, err := codec.Encode(e)
	if err != nil {
		t.Fatal(err)
	}
	got, err := codec.Decode(body, eventmodels.Meta{})
	if err != nil {
		t.Fatal(err)
	}
	if d, ok := eventmodels.As[*downstream](got); !ok || d.Site != "VLA" || d.EventID != e.EventID {
		t.Fatalf("decoded %#v", got)
	}
	e.Site = ""
	body, _ = codec.Encode(e)
	var ve *eventmodels.ValidationError
	if _, err := codec.Decode(body, eventmodels.Meta{}); !errors.As(err, &ve) || !ve.Has("site") {
		t.Fatalf("Decode of invalid downstream event = %v", err)
	}
}

func TestRegistryRejectsWrongGoType(t *testing.T) {
	reg := eventmodels.NewRegistry()
	e := samples.All()[1]
	e.Envelope().EventType = eventmodels.TypeJobCompleted
	if _, err := reg.InfoOf(e); err == nil {
		t.Fatal("a JobQueued claiming to be job.completed must be refused")
	}
	e.Envelope().EventType = "job.exploded"
	if _, err := reg.InfoOf(e); !errors.Is(err, eventmodels.ErrUnknownEventType) {
		t.Fatalf("InfoOf = %v, want ErrUnknownEventType", err)
	}
	if _, err := reg.New("nope"); !errors.Is(err, eventmodels.ErrUnknownEventType) {
		t.Fatal("New(unknown) must fail with ErrUnknownEventType")
	}
}

func TestValidationErrorMessage(t *testing.T) {
	e := samples.All()[1].(*eventmodels.JobQueued)
	e.Queue, e.Position = "", -1
	err := e.Validate()
	want := `eventmodels: invalid job.queued: queue: must not be empty; position: must not be negative`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v\nwant %s", err, want)
	}
}
