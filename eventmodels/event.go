package eventmodels

import (
	"crypto/rand"
	"time"

	"github.com/google/uuid"
)

// Event is implemented by every event of the platform, built-in or registered
// by downstream code. An implementation embeds [Base] (which provides
// Envelope) and adds Key and Validate.
type Event interface {
	// Envelope returns the event's envelope. The pointer refers to the event
	// itself: changes through it change the event.
	Envelope() *Base
	// Key is the partition and ordering key: the job ID for job events.
	// Events with equal keys are delivered in publish order.
	Key() string
	// Validate reports every rule the event breaks in one *ValidationError,
	// or nil if it is valid.
	Validate() error
}

// Base is the envelope every event carries.
type Base struct {
	// EventID identifies the event uniquely; constructors use a
	// time-ordered UUIDv7 (see NewEventID). Consumers de-duplicate on it.
	EventID uuid.UUID `json:"event_id" avro:"event_id"`
	// EventType is the discriminator, e.g. "job.submitted".
	EventType string `json:"event_type" avro:"event_type"`
	// Timestamp is when the event occurred, in UTC at millisecond precision
	// (the precision of the Avro timestamp-millis type), within the years
	// 0000 to 9999 that RFC 3339, the JSON form, can write.
	Timestamp time.Time `json:"timestamp" avro:"timestamp"`
	// CorrelationID follows one job or request through every service.
	CorrelationID uuid.UUID `json:"correlation_id" avro:"correlation_id"`
	// UserID is who initiated the event; never empty.
	UserID string `json:"user_id" avro:"user_id"`
	// SchemaVersion is the version of the payload schema the event was
	// written with.
	SchemaVersion int `json:"schema_version" avro:"schema_version"`
}

// The range of timestamps RFC 3339 (the JSON form of Timestamp) can write.
var (
	minTimestamp = time.Date(0, time.January, 1, 0, 0, 0, 0, time.UTC)
	maxTimestamp = time.Date(9999, time.December, 31, 23, 59, 59, 999_999_999, time.UTC)
)

// Envelope returns b itself. It makes every type that embeds Base satisfy
// that part of [Event].
func (b *Base) Envelope() *Base { return b }

func (b *Base) validate(v *validator) {
	if b.EventID == uuid.Nil {
		v.add("event_id", "must be a non-nil UUID")
	}
	if b.EventType == "" {
		v.add("event_type", "must not be empty")
	} else if p := identProblem(b.EventType); p != "" {
		v.add("event_type", p)
	}
	if b.Timestamp.IsZero() {
		v.add("timestamp", "must be set")
	} else if b.Timestamp.Before(minTimestamp) || b.Timestamp.After(maxTimestamp) {
		v.add("timestamp", "must be within the years 0000 to 9999 (RFC 3339)")
	}
	if b.CorrelationID == uuid.Nil {
		v.add("correlation_id", "must be a non-nil UUID")
	}
	v.required("user_id", b.UserID)
	v.ident("user_id", b.UserID, MaxIDLength)
	v.between("schema_version", int64(b.SchemaVersion), 1, MaxWireInt)
}

// NewEventID returns a new time-ordered UUID (version 7): IDs created later
// sort after IDs created earlier, which keeps de-duplication windows and
// storage indexes friendly.
func NewEventID() uuid.UUID {
	id, err := uuid.NewV7()
	if err != nil {
		// uuid.NewV7 fails only when the system random source fails.
		return fallbackRandomID()
	}
	return id
}

// NewCorrelationID returns a new random correlation ID (a UUIDv7 as well, so
// correlation IDs also sort by creation time).
func NewCorrelationID() uuid.UUID { return NewEventID() }

func fallbackRandomID() uuid.UUID {
	var id uuid.UUID
	_, _ = rand.Read(id[:]) // crypto/rand.Read never returns an error since Go 1.24.
	id[6] = (id[6] & 0x0f) | 0x40
	id[8] = (id[8] & 0x3f) | 0x80
	return id
}

// Option adjusts the envelope a constructor fills.
type Option func(*envelopeConfig)

type envelopeConfig struct {
	now           func() time.Time
	eventID       uuid.UUID
	correlationID uuid.UUID
}

// WithClock makes the constructor read the time from now instead of
// time.Now; tests use it to get deterministic timestamps.
func WithClock(now func() time.Time) Option {
	return func(c *envelopeConfig) { c.now = now }
}

// WithCorrelationID sets the correlation ID instead of a new one; pass the
// job's correlation ID so every event of a job shares it.
func WithCorrelationID(id uuid.UUID) Option {
	return func(c *envelopeConfig) { c.correlationID = id }
}

// WithEventID sets the event ID instead of a new one.
func WithEventID(id uuid.UUID) Option {
	return func(c *envelopeConfig) { c.eventID = id }
}

// newBase fills an envelope for eventType written with schema version.
func newBase(eventType string, version int, userID string, opts []Option) Base {
	cfg := envelopeConfig{now: time.Now}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.eventID == uuid.Nil {
		cfg.eventID = NewEventID()
	}
	if cfg.correlationID == uuid.Nil {
		cfg.correlationID = NewCorrelationID()
	}
	return Base{
		EventID:       cfg.eventID,
		EventType:     eventType,
		Timestamp:     NormalizeTime(cfg.now()),
		CorrelationID: cfg.correlationID,
		UserID:        userID,
		SchemaVersion: version,
	}
}

// NewBase fills an envelope for a downstream event type: a new event ID, a
// new correlation ID unless WithCorrelationID is given, the current time.
func NewBase(eventType string, schemaVersion int, userID string, opts ...Option) Base {
	return newBase(eventType, schemaVersion, userID, opts)
}

// ValidateBase checks the envelope rules and returns the (possibly empty)
// result, never nil. Downstream Validate methods start with it, add their own
// checks and end with ve.Err():
//
//	ve := eventmodels.ValidateBase(&e.Base)
//	if e.Site == "" { ve.Add("site", "must not be empty") }
//	return ve.Err()
func ValidateBase(b *Base) *ValidationError {
	var v validator
	b.validate(&v)
	out := v.ve
	out.EventType = b.EventType
	return &out
}

// NormalizeTime returns t in UTC cut to whole milliseconds, the precision
// events carry on the wire.
func NormalizeTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Millisecond)
}
