package eventmodels

import (
	"errors"
	"fmt"
)

// Content types of the two wire encodings.
const (
	ContentTypeAvro = "application/avro"
	ContentTypeJSON = "application/json"
)

// DefaultMaxEventSize is the largest body a codec decodes unless configured
// otherwise: 1 MiB, Kafka's default message size.
const DefaultMaxEventSize = 1 << 20

// Errors returned by codecs. Match them with errors.Is.
var (
	// ErrUnknownEventType is returned when an event type is not registered.
	ErrUnknownEventType = errors.New("eventmodels: unknown event type")
	// ErrTooLarge is returned when a body exceeds the codec's size limit.
	ErrTooLarge = errors.New("eventmodels: event too large")
	// ErrMalformed is returned for bytes that are not a well-formed event
	// in the codec's encoding (syntax errors, truncation, wrong types).
	ErrMalformed = errors.New("eventmodels: malformed event")
)

// Meta is what the transport knows about a body before decoding it: the
// CloudEvents type and schema version from the message headers.
type Meta struct {
	// EventType from the ce_type header. A JSON body carries its own
	// discriminator and may leave it empty; when both are present they
	// must agree. The Avro codec needs it.
	EventType string
	// SchemaVersion the body was written with (from ce_dataschema); 0 means
	// the codec's current version.
	SchemaVersion int
}

// Codec turns events into bodies and back. Implementations are safe for
// concurrent use.
type Codec interface {
	// ContentType is the MIME type written in the content-type header.
	ContentType() string
	// Encode returns the body of e. It does not validate e.
	Encode(e Event) ([]byte, error)
	// DataSchema names the schema bodies of eventType are written with, for
	// the ce_dataschema header (e.g. "job-metrics/v2"); "" if the encoding
	// has no schema.
	DataSchema(eventType string) string
	// Decode returns the event in data and validates it. Errors wrap
	// ErrUnknownEventType, ErrTooLarge, ErrMalformed or *ValidationError,
	// inside a *DecodeError.
	Decode(data []byte, meta Meta) (Event, error)
}

// InfoCodec is implemented by codecs that take the registration of an
// event's type from their caller, which has looked it up already (the
// typed layer does once per message), instead of looking it up again.
type InfoCodec interface {
	Codec
	// EncodeInfo is Encode for an event of the registered type info.
	EncodeInfo(info TypeInfo, e Event) ([]byte, error)
	// DecodeInfo is Decode for a body of the registered type info, written
	// with schema version (0: the current one).
	DecodeInfo(info TypeInfo, data []byte, version int) (Event, error)
	// DataSchemaOf is DataSchema for the registered type info.
	DataSchemaOf(info TypeInfo) string
}

// DecodeError describes a body that could not be decoded.
type DecodeError struct {
	ContentType string
	EventType   string // as far as known
	Err         error
}

func (e *DecodeError) Error() string {
	typ := e.EventType
	if typ == "" {
		typ = "event"
	}
	return fmt.Sprintf("decode %s %s: %v", e.ContentType, typ, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

func unknownType(t string) error {
	return fmt.Errorf("%w %q", ErrUnknownEventType, t)
}

// DecodeFailure builds the *DecodeError codecs return; exported so codecs in
// other packages report failures the same way.
func DecodeFailure(contentType, eventType string, err error) error {
	return &DecodeError{ContentType: contentType, EventType: eventType, Err: err}
}

// Malformed wraps a parser's error so it matches ErrMalformed.
func Malformed(err error) error {
	return fmt.Errorf("%w: %v", ErrMalformed, err)
}

// TooLarge returns an error matching ErrTooLarge for a body of n bytes over max.
func TooLarge(n, max int) error {
	return fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, n, max)
}
