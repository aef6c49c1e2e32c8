package eventmodels

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
)

// The durable topics of the platform (SPEC §3). Package broker holds their
// partitions and retention.
const (
	TopicJobLifecycle  = "job-lifecycle"
	TopicJobMetrics    = "job-metrics"
	TopicNotifications = "notifications"
	TopicAuditTrail    = "audit-trail"
	TopicSystemHealth  = "system-health"
)

// Avro schema names (package schemas): one schema per topic.
const (
	SchemaJobLifecycle  = "job-lifecycle"
	SchemaJobMetrics    = "job-metrics"
	SchemaNotifications = "notifications"
	SchemaAuditTrail    = "audit-trail"
	SchemaSystemHealth  = "system-health"
)

// TypeInfo describes one registered event type.
type TypeInfo struct {
	// EventType is the discriminator, e.g. "job.submitted".
	EventType string
	// Topic is where the event is published.
	Topic string
	// Schema names the Avro schema that carries the type (see package
	// schemas); empty if the type has no Avro form.
	Schema string
	// AvroName is the full name of the type's record in that schema, e.g.
	// "cosmichorizons.events.JobSubmitted".
	AvroName string
	// AvroPayload, for a type of its own (Schema empty), is the Avro record
	// of its payload fields: the fields after the six envelope fields,
	// which the Avro codec adds (see the AvroPayload option of Register).
	// Empty: the type has no Avro form and travels as JSON.
	AvroPayload string
	// PayloadVersion is the version of AvroPayload, written in
	// ce_dataschema as "<event type>/v<version>"; default 1.
	PayloadVersion int
	// New returns a new, zero event of the type (a pointer).
	New func() Event

	goType reflect.Type
}

// Registry maps event types to their Go type, topic and schema. It is safe
// for concurrent use. NewRegistry returns one with the built-in types;
// downstream code adds its own with Register. There is no package-level
// registry: each service (and each test) owns its own.
type Registry struct {
	mu   sync.Mutex // serialises Register
	snap atomic.Pointer[registrySnapshot]
}

// registrySnapshot is immutable: Register copies it, so lookups on the
// publish and consume paths take no lock.
type registrySnapshot struct {
	byType map[string]TypeInfo
	byGo   map[reflect.Type]string
}

// ErrDuplicateType is returned by Register when the event type, or its Go
// type, is already registered.
var ErrDuplicateType = errors.New("eventmodels: event type already registered")

// NewRegistry returns a registry holding the built-in event types.
func NewRegistry() *Registry {
	r := &Registry{}
	r.snap.Store(&registrySnapshot{byType: map[string]TypeInfo{}, byGo: map[reflect.Type]string{}})
	for _, info := range builtins() {
		if err := r.Register(info); err != nil {
			panic(err) // the built-in table is static: a failure is a bug caught by every test
		}
	}
	return r
}

const avroNamespace = "cosmichorizons.events."

func builtins() []TypeInfo {
	lc := func(typ, name string, f func() Event) TypeInfo {
		return TypeInfo{EventType: typ, Topic: TopicJobLifecycle, Schema: SchemaJobLifecycle, AvroName: avroNamespace + name, New: f}
	}
	return []TypeInfo{
		lc(TypeJobSubmitted, "JobSubmitted", func() Event { return new(JobSubmitted) }),
		lc(TypeJobQueued, "JobQueued", func() Event { return new(JobQueued) }),
		lc(TypeJobStatusChanged, "JobStatusChanged", func() Event { return new(JobStatusChanged) }),
		lc(TypeJobCompleted, "JobCompleted", func() Event { return new(JobCompleted) }),
		lc(TypeJobFailed, "JobFailed", func() Event { return new(JobFailed) }),
		lc(TypeJobCancelled, "JobCancelled", func() Event { return new(JobCancelled) }),
		{EventType: TypeJobMetrics, Topic: TopicJobMetrics, Schema: SchemaJobMetrics, AvroName: avroNamespace + "JobMetrics", New: func() Event { return new(JobMetrics) }},
		{EventType: TypeNotification, Topic: TopicNotifications, Schema: SchemaNotifications, AvroName: avroNamespace + "Notification", New: func() Event { return new(Notification) }},
		{EventType: TypeAudit, Topic: TopicAuditTrail, Schema: SchemaAuditTrail, AvroName: avroNamespace + "Audit", New: func() Event { return new(Audit) }},
		{EventType: TypeSystemHealth, Topic: TopicSystemHealth, Schema: SchemaSystemHealth, AvroName: avroNamespace + "SystemHealth", New: func() Event { return new(SystemHealth) }},
	}
}

// Register adds an event type. It fails if EventType, Topic or New is
// missing, if New returns nil or a non-pointer, or if the type or its Go type
// is already registered (ErrDuplicateType).
func (r *Registry) Register(info TypeInfo) error {
	var missing []string
	if info.EventType == "" {
		missing = append(missing, "EventType")
	}
	if info.Topic == "" {
		missing = append(missing, "Topic")
	}
	if info.New == nil {
		missing = append(missing, "New")
	}
	if len(missing) > 0 {
		return fmt.Errorf("eventmodels: register %q: missing %v", info.EventType, missing)
	}
	if (info.Schema == "") != (info.AvroName == "") {
		return fmt.Errorf("eventmodels: register %q: Schema and AvroName go together", info.EventType)
	}
	if info.Schema != "" && info.AvroPayload != "" {
		return fmt.Errorf("eventmodels: register %q: a type's Avro form is a catalog Schema or an AvroPayload, not both", info.EventType)
	}
	if info.PayloadVersion < 0 {
		return fmt.Errorf("eventmodels: register %q: PayloadVersion must not be negative", info.EventType)
	}
	if info.AvroPayload != "" && info.PayloadVersion == 0 {
		info.PayloadVersion = 1
	}
	sample := info.New()
	if sample == nil || reflect.TypeOf(sample).Kind() != reflect.Pointer || reflect.ValueOf(sample).IsNil() {
		return fmt.Errorf("eventmodels: register %q: New must return a non-nil pointer", info.EventType)
	}
	info.goType = reflect.TypeOf(sample)
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snap.Load()
	if _, ok := old.byType[info.EventType]; ok {
		return fmt.Errorf("%w: %q", ErrDuplicateType, info.EventType)
	}
	if other, ok := old.byGo[info.goType]; ok {
		return fmt.Errorf("%w: Go type %v is already %q", ErrDuplicateType, info.goType, other)
	}
	next := &registrySnapshot{byType: maps.Clone(old.byType), byGo: maps.Clone(old.byGo)}
	next.byType[info.EventType] = info
	next.byGo[info.goType] = info.EventType
	r.snap.Store(next)
	return nil
}

// HasAvro reports whether the type has an Avro form: a schema of the
// catalog, or its own payload record.
func (info TypeInfo) HasAvro() bool { return info.Schema != "" || info.AvroPayload != "" }

// GoType returns the Go type of the type's events (a pointer type).
func (info TypeInfo) GoType() reflect.Type { return info.goType }

// RegisterOption adjusts a registration made with Register.
type RegisterOption func(*TypeInfo)

// AvroPayload gives the type an Avro form. avsc is an Avro record of the
// type's payload fields only, without the six envelope fields (event_id,
// event_type, timestamp, correlation_id, user_id, schema_version), which
// the Avro codec writes first for every type; the record's name and
// namespace name the Avro record. Each field needs a Go field tagged
// avro:"<name>". Without this option the type travels as JSON.
func AvroPayload(avsc string) RegisterOption {
	return func(info *TypeInfo) { info.AvroPayload = avsc }
}

// PayloadVersion sets the version of the type's AvroPayload (default 1);
// raise it when the payload record changes.
func PayloadVersion(v int) RegisterOption {
	return func(info *TypeInfo) { info.PayloadVersion = v }
}

// Register adds T, an event type of your own, to r in one step: events of
// type eventType, published to topic. T is a pointer to a struct that
// embeds Base (so *T implements Event). The type travels as JSON unless
// AvroPayload gives it an Avro form. It fails as Registry.Register does.
//
//	err := eventmodels.Register[*SiteCalibrated](reg, "site.calibrated", "site-events")
func Register[T Event](r *Registry, eventType, topic string, opts ...RegisterOption) error {
	t := reflect.TypeFor[T]()
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("eventmodels: register %q: %v is not a pointer to a struct", eventType, t)
	}
	info := TypeInfo{EventType: eventType, Topic: topic, New: func() Event { return reflect.New(t.Elem()).Interface().(T) }}
	for _, o := range opts {
		o(&info)
	}
	return r.Register(info)
}

// Lookup returns the registration of eventType.
func (r *Registry) Lookup(eventType string) (TypeInfo, bool) {
	info, ok := r.snap.Load().byType[eventType]
	return info, ok
}

// New returns a new zero event for eventType, or an error wrapping
// ErrUnknownEventType.
func (r *Registry) New(eventType string) (Event, error) {
	info, ok := r.Lookup(eventType)
	if !ok {
		return nil, unknownType(eventType)
	}
	return info.New(), nil
}

// InfoOf returns the registration of e's event type and checks that e has
// the Go type registered for it.
func (r *Registry) InfoOf(e Event) (TypeInfo, error) {
	if e == nil {
		return TypeInfo{}, errors.New("eventmodels: nil event")
	}
	typ := e.Envelope().EventType
	info, ok := r.Lookup(typ)
	if !ok {
		return TypeInfo{}, unknownType(typ)
	}
	if got := reflect.TypeOf(e); got != info.goType {
		return TypeInfo{}, fmt.Errorf("eventmodels: event type %q is registered as %v, got %v", typ, info.goType, got)
	}
	return info, nil
}

// LookupGoType returns the registration whose New returns values of type t
// (a pointer type such as *JobCompleted).
func (r *Registry) LookupGoType(t reflect.Type) (TypeInfo, bool) {
	snap := r.snap.Load()
	typ, ok := snap.byGo[t]
	if !ok {
		return TypeInfo{}, false
	}
	return snap.byType[typ], true
}

// Types returns every registration, sorted by event type.
func (r *Registry) Types() []TypeInfo {
	snap := r.snap.Load()
	out := make([]TypeInfo, 0, len(snap.byType))
	for _, info := range snap.byType {
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].EventType < out[j].EventType })
	return out
}

// Topics returns the distinct topics of the registered types, sorted.
func (r *Registry) Topics() []string {
	seen := map[string]bool{}
	var out []string
	for _, info := range r.Types() {
		if !seen[info.Topic] {
			seen[info.Topic] = true
			out = append(out, info.Topic)
		}
	}
	sort.Strings(out)
	return out
}
