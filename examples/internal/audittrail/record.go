package audittrail

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/cosmic-horizons/events/eventmodels"
)

// MaxEventSize bounds Entry.Event: 1 MiB, the largest event a codec
// decodes by default.
const MaxEventSize = eventmodels.DefaultMaxEventSize

// GenesisHash is the prev of the very first record of a trail: 64 zeros.
var GenesisHash = strings.Repeat("0", sha256.Size*2)

// Entry is what the auditor records about one consumed event. Append copies
// it into a Record and adds the chain fields.
type Entry struct {
	// EventID is the event's envelope ID; the trail records each ID once.
	// Required.
	EventID uuid.UUID
	// EventType is the envelope discriminator, e.g. "job.completed".
	// Required.
	EventType string
	// Topic the event was consumed from.
	Topic string
	// Key is the message key (the partition key: job ID for job events).
	Key string
	// JobID is the job the event belongs to, empty if none; ByJob finds
	// records by it. JobIDOf derives it from an event.
	JobID string
	// CorrelationID and UserID copy the envelope.
	CorrelationID uuid.UUID
	UserID        string
	// EventTime is the envelope timestamp (when the event occurred); it is
	// stored in UTC.
	EventTime time.Time
	// Event is the whole event as a JSON object, as eventmodels.JSONCodec
	// encodes it. It is stored compacted. Required, at most MaxEventSize.
	Event json.RawMessage
}

// NewEntry builds the Entry for e consumed from topic, encoding the event
// with codec (the JSON form is what the trail stores, whatever encoding the
// event arrived in).
func NewEntry(topic string, e eventmodels.Event, codec *eventmodels.JSONCodec) (Entry, error) {
	body, err := codec.Encode(e)
	if err != nil {
		return Entry{}, fmt.Errorf("audittrail: encode %s: %w", e.Envelope().EventType, err)
	}
	b := e.Envelope()
	return Entry{
		EventID:       b.EventID,
		EventType:     b.EventType,
		Topic:         topic,
		Key:           e.Key(),
		JobID:         JobIDOf(e),
		CorrelationID: b.CorrelationID,
		UserID:        b.UserID,
		EventTime:     b.Timestamp,
		Event:         body,
	}, nil
}

// JobIDOf returns the job an event belongs to: the JobID of the job
// lifecycle and job.metrics events and of a notification about a job, the
// resource ID of an audit event whose resource type is "job", and "" for
// anything else (system health, downstream event types).
func JobIDOf(e eventmodels.Event) string {
	if eventmodels.IsJobEvent(e) || eventmodels.IsJobMetrics(e) {
		return e.Key() // a job event's key is its job ID
	}
	if n, ok := e.(*eventmodels.Notification); ok {
		return n.JobID
	}
	if a, ok := e.(*eventmodels.Audit); ok && a.Resource.Type == "job" {
		return a.Resource.ID
	}
	return ""
}

// Record is one line of the trail: the Entry plus the chain fields. The
// JSON field order of this struct is the on-disk order (see the package
// documentation); json.Marshal of a Record is exactly its line without the
// newline.
type Record struct {
	// Seq numbers records from 1, gapless across segments.
	Seq uint64 `json:"seq"`
	// Prev is the Hash of the record before (GenesisHash for seq 1).
	Prev string `json:"prev"`
	// RecordedAt is when the trail appended the record, by its Clock, UTC.
	RecordedAt time.Time `json:"recorded_at"`

	// The fields of the Entry; EventTime is in UTC and Event compacted.
	EventID       uuid.UUID       `json:"event_id"`
	EventType     string          `json:"event_type"`
	Topic         string          `json:"topic"`
	Key           string          `json:"key"`
	JobID         string          `json:"job_id"`
	CorrelationID uuid.UUID       `json:"correlation_id"`
	UserID        string          `json:"user_id"`
	EventTime     time.Time       `json:"event_time"`
	Event         json.RawMessage `json:"event"`

	// Hash is the lowercase hex SHA-256 of Prev, a newline, and the
	// record's body (its line without the hash field); see ChainHash.
	Hash string `json:"hash"`
}

// recordTail is the part of a record's body that does not depend on its
// place in the chain; Append encodes it before taking the lock.
type recordTail struct {
	EventID       uuid.UUID       `json:"event_id"`
	EventType     string          `json:"event_type"`
	Topic         string          `json:"topic"`
	Key           string          `json:"key"`
	JobID         string          `json:"job_id"`
	CorrelationID uuid.UUID       `json:"correlation_id"`
	UserID        string          `json:"user_id"`
	EventTime     time.Time       `json:"event_time"`
	Event         json.RawMessage `json:"event"`
}

// encodeTail validates e and returns its tail fields as JSON without the
// opening brace: `"event_id":…,"event":{…}}`.
func (e *Entry) encodeTail() ([]byte, error) {
	bad := func(format string, args ...any) ([]byte, error) {
		return nil, fmt.Errorf("%w: %s", ErrInvalidEntry, fmt.Sprintf(format, args...))
	}
	switch {
	case e.EventID == uuid.Nil:
		return bad("nil event ID")
	case e.EventType == "":
		return bad("event %s: empty event type", e.EventID)
	case len(e.Event) > MaxEventSize:
		return bad("event %s: %d bytes, limit %d", e.EventID, len(e.Event), MaxEventSize)
	}
	if ev := bytes.TrimSpace(e.Event); len(ev) == 0 || ev[0] != '{' {
		return bad("event %s: body is not a JSON object", e.EventID)
	}
	b, err := json.Marshal(recordTail{
		EventID:       e.EventID,
		EventType:     e.EventType,
		Topic:         e.Topic,
		Key:           e.Key,
		JobID:         e.JobID,
		CorrelationID: e.CorrelationID,
		UserID:        e.UserID,
		EventTime:     e.EventTime.UTC(),
		Event:         e.Event,
	})
	if err != nil {
		return bad("event %s: %v", e.EventID, err)
	}
	return b[1:], nil
}

// appendBody appends a record's body (the hashed bytes) to b.
func appendBody(b []byte, seq uint64, prev string, at time.Time, tail []byte) []byte {
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, seq, 10)
	b = append(b, `,"prev":"`...)
	b = append(b, prev...)
	b = append(b, `","recorded_at":"`...)
	b = at.UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `",`...)
	return append(b, tail...)
}

const (
	hashField = `,"hash":"`
	hashLen   = sha256.Size * 2
	// suffixLen is the length of `,"hash":"<64 hex>"}` ending every line.
	suffixLen = len(hashField) + hashLen + len(`"}`)
)

// appendLine turns body into its line: the closing brace is replaced by
// `,"hash":"<hash>"}` and a newline is added.
func appendLine(body []byte, hash string) []byte {
	line := body[:len(body)-1]
	line = append(line, hashField...)
	line = append(line, hash...)
	return append(line, "\"}\n"...)
}

// ChainHash returns the hash of a record: the lowercase hex SHA-256 of
// prev (64 hex characters), one newline byte, and body.
func ChainHash(prev string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write([]byte{'\n'})
	h.Write(body)
	var sum [sha256.Size]byte
	return hex.EncodeToString(h.Sum(sum[:0]))
}

// recordHead is what scans need from a body.
type recordHead struct {
	Seq     uint64    `json:"seq"`
	Prev    string    `json:"prev"`
	EventID uuid.UUID `json:"event_id"`
	JobID   string    `json:"job_id"`
}

// splitLine checks the line's hash suffix and returns the stored hash and
// the body: the line with the suffix replaced by "}". The body is built in
// buf, which is returned for reuse.
func splitLine(line, buf []byte) (hash string, body []byte, err error) {
	if len(line) < suffixLen+2 || line[0] != '{' {
		return "", buf, errors.New("too short or not a JSON object")
	}
	cut := len(line) - suffixLen
	if string(line[cut:cut+len(hashField)]) != hashField || string(line[len(line)-2:]) != `"}` {
		return "", buf, errors.New(`line does not end with ,"hash":"<64 hex>"}`)
	}
	h := line[cut+len(hashField) : len(line)-2]
	if !isHash(h) {
		return "", buf, errors.New("hash is not 64 lowercase hex digits")
	}
	body = append(append(buf[:0], line[:cut]...), '}')
	return string(h), body, nil
}

// parseHead parses and checks the fields scans rely on.
func parseHead(body []byte) (recordHead, error) {
	var h recordHead
	if err := json.Unmarshal(body, &h); err != nil {
		return h, fmt.Errorf("body: %w", err)
	}
	switch {
	case h.Seq == 0:
		return h, errors.New("seq missing or zero")
	case !isHash([]byte(h.Prev)):
		return h, errors.New("prev is not 64 lowercase hex digits")
	case h.EventID == uuid.Nil:
		return h, errors.New("event_id missing or nil")
	}
	return h, nil
}

// decodeRecord parses a whole line (without its newline) and checks it
// against its own hash.
func decodeRecord(line []byte) (Record, error) {
	hash, body, err := splitLine(line, nil)
	if err != nil {
		return Record{}, err
	}
	if _, err := parseHead(body); err != nil {
		return Record{}, err
	}
	var r Record
	if err := json.Unmarshal(body, &r); err != nil {
		return Record{}, fmt.Errorf("body: %w", err)
	}
	r.Hash = hash
	if got := ChainHash(r.Prev, body); got != hash {
		return Record{}, fmt.Errorf("hash mismatch: stored %s, computed %s", hash, got)
	}
	return r, nil
}

func isHash(b []byte) bool {
	if len(b) != hashLen {
		return false
	}
	for _, c := range b {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
