package events

import (
	"errors"
	"fmt"
	"strings"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/google/uuid"
)

// ErrNotCloudEvent matches (errors.Is) every *CloudEventError: a message
// whose headers do not make a CloudEvents 1.0 event.
var ErrNotCloudEvent = errors.New("events: not a CloudEvents 1.0 message")

// CloudEventError is the error the Bus decodes a message with when its
// headers lack, or give a wrong value for, an attribute CloudEvents 1.0
// requires: specversion ("1.0"), id, source and type, each non-empty. It
// comes wrapped in broker.Permanent: the pipeline dead-letters the message
// at once, with this error's text (naming each header) in x-dlq-error.
// errors.As finds it; errors.Is(err, ErrNotCloudEvent) matches it.
type CloudEventError struct {
	// Problems lists each broken attribute, e.g. `ce_specversion is "0.3",
	// want "1.0"` or "ce_source is missing".
	Problems []string
	// Attributes names the broken attributes ("specversion", "source"),
	// in the order of Problems.
	Attributes []string
}

func (e *CloudEventError) Error() string {
	return ErrNotCloudEvent.Error() + ": " + strings.Join(e.Problems, "; ")
}

// Unwrap returns ErrNotCloudEvent.
func (e *CloudEventError) Unwrap() error { return ErrNotCloudEvent }

// CheckCloudEvent returns a *CloudEventError when m's headers lack an
// attribute CloudEvents 1.0 requires (ce_specversion "1.0", ce_id,
// ce_source, ce_type; on AMQP cloudEvents_<attr>, which rabbitbus maps to
// ce_<attr>), else nil. The Bus runs it on every message before decoding.
func CheckCloudEvent(m *broker.Message) error {
	var e CloudEventError
	add := func(attr, problem string) {
		e.Attributes = append(e.Attributes, attr)
		e.Problems = append(e.Problems, problem)
	}
	switch v, ok := m.Headers.Lookup(broker.HeaderSpecVersion); {
	case !ok || v == "":
		add("specversion", fmt.Sprintf("%s is missing (want %q)", broker.HeaderSpecVersion, broker.SpecVersion))
	case v != broker.SpecVersion:
		add("specversion", fmt.Sprintf("%s is %q, want %q", broker.HeaderSpecVersion, v, broker.SpecVersion))
	}
	for _, a := range [...]struct{ attr, header string }{
		{"id", broker.HeaderID},
		{"source", broker.HeaderSource},
		{"type", broker.HeaderType},
	} {
		if m.Header(a.header) == "" {
			add(a.attr, a.header+" is missing")
		}
	}
	if len(e.Problems) == 0 {
		return nil
	}
	return &e
}

// contentType returns the content type of m: the content-type header, else
// the ce_datacontenttype header (the CloudEvents attribute, which AMQP
// producers may set as cloudEvents_datacontenttype instead of the
// ContentType property), else "" (read as Avro). The two disagreeing is an
// error.
func contentType(m *broker.Message) (string, error) {
	ct := m.Header(broker.HeaderContentType)
	dct := m.Header(broker.HeaderDataContentType)
	switch {
	case dct == "":
		return ct, nil
	case ct == "":
		return dct, nil
	case mediaType(ct) != mediaType(dct):
		return "", fmt.Errorf("%w: %s %q and %s %q disagree", eventmodels.ErrUnsupportedContentType,
			broker.HeaderContentType, ct, broker.HeaderDataContentType, dct)
	}
	return ct, nil
}

// mediaType returns the media type of a content type, lower case, without
// parameters.
func mediaType(contentType string) string {
	mt, _, _ := strings.Cut(contentType, ";")
	return strings.TrimSpace(strings.ToLower(mt))
}

// sameID reports whether a header ID and a body UUID are the same ID:
// compared as UUIDs, so case does not matter (RFC 9562).
func sameID(header string, id uuid.UUID) bool {
	h, err := uuid.Parse(header)
	return err == nil && h == id
}
