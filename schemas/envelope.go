package schemas

import (
	"fmt"
	"math"
	"time"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/google/uuid"
	"github.com/hamba/avro/v2"
)

// The envelope is the first six fields of every event record. The codec
// reads and writes it by hand and leaves only the payload to hamba/avro:
// hamba's struct codec looks up the Go type of an embedded struct's fields
// on every call, which made the envelope cost more than the whole payload.

// envelopeSchema is the envelope as an Avro field list; every record must
// start with exactly these fields (checked when a plan is built).
var envelopeSchema = avro.MustParse(`{"type":"record","name":"Envelope","fields":[
	{"name":"event_id","type":{"type":"string","logicalType":"uuid"}},
	{"name":"event_type","type":"string"},
	{"name":"timestamp","type":{"type":"long","logicalType":"timestamp-millis"}},
	{"name":"correlation_id","type":{"type":"string","logicalType":"uuid"}},
	{"name":"user_id","type":"string"},
	{"name":"schema_version","type":"int"}]}`).(*avro.RecordSchema)

const envelopeFields = 6

// splitRecord checks that rec starts with the envelope and returns a record
// of the remaining (payload) fields. The payload record gets a name of its own
// per writer version: hamba caches decoders by a fingerprint of the schema's
// canonical form, which leaves out the resolution actions of a record
// resolved against an older writer, so without distinct names the decoder for
// v1 bodies would be reused for v2 bodies.
func splitRecord(rec *avro.RecordSchema, writerVersion int) (*avro.RecordSchema, error) {
	fields := rec.Fields()
	want := envelopeSchema.Fields()
	if len(fields) < len(want) {
		return nil, fmt.Errorf("schemas: record %s lacks the envelope fields", rec.FullName())
	}
	for i, w := range want {
		f := fields[i]
		if f.Name() != w.Name() || f.Type().String() != w.Type().String() {
			return nil, fmt.Errorf("schemas: record %s: field %d is %s %s, want envelope field %s %s",
				rec.FullName(), i, f.Name(), f.Type(), w.Name(), w.Type())
		}
	}
	name := fmt.Sprintf("%sPayloadV%d", rec.Name(), writerVersion)
	payload, err := avro.NewRecordSchema(name, rec.Namespace(), fields[envelopeFields:])
	if err != nil {
		return nil, fmt.Errorf("schemas: record %s: %w", rec.FullName(), err)
	}
	return payload, nil
}

// Timestamps whose Unix milliseconds fit in an int64 (timestamp-millis).
const (
	maxUnixSeconds = math.MaxInt64 / 1000
	minUnixSeconds = math.MinInt64/1000 + 1
)

// checkEnvelope refuses the envelope values writeEnvelope would truncate.
func checkEnvelope(b *eventmodels.Base) error {
	if b.SchemaVersion < math.MinInt32 || b.SchemaVersion > math.MaxInt32 {
		return outOfIntRange("schema_version", fmt.Sprint(b.SchemaVersion))
	}
	if s := b.Timestamp.Unix(); s < minUnixSeconds || s > maxUnixSeconds {
		return fmt.Errorf("%w: timestamp %v is beyond the int64 milliseconds of timestamp-millis", ErrOutOfRange, b.Timestamp)
	}
	return nil
}

func writeEnvelope(w *avro.Writer, b *eventmodels.Base) {
	var buf [36]byte
	writeUUID(w, &buf, b.EventID)
	w.WriteString(b.EventType)
	w.WriteLong(b.Timestamp.UnixMilli())
	writeUUID(w, &buf, b.CorrelationID)
	w.WriteString(b.UserID)
	w.WriteInt(int32(b.SchemaVersion))
}

func writeUUID(w *avro.Writer, buf *[36]byte, id uuid.UUID) {
	const hexdigits = "0123456789abcdef"
	j := 0
	for i, c := range id {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			buf[j] = '-'
			j++
		}
		buf[j], buf[j+1] = hexdigits[c>>4], hexdigits[c&0x0f]
		j += 2
	}
	w.WriteLong(36)
	_, _ = w.Write(buf[:])
}

func readEnvelope(r *avro.Reader, b *eventmodels.Base) {
	b.EventID = readUUID(r, "event_id")
	b.EventType = r.ReadString()
	b.Timestamp = time.UnixMilli(r.ReadLong()).UTC()
	b.CorrelationID = readUUID(r, "correlation_id")
	b.UserID = r.ReadString()
	b.SchemaVersion = int(r.ReadInt())
}

func readUUID(r *avro.Reader, field string) uuid.UUID {
	text := r.ReadBytes()
	if r.Error != nil {
		return uuid.Nil
	}
	id, ok := parseUUID(text)
	if !ok {
		r.ReportError(field, fmt.Sprintf("invalid UUID %q", text))
	}
	return id
}

// parseUUID reads the canonical 36-character form only (what every producer
// of this module writes); uuid.ParseBytes also takes braces and URNs and is
// three times slower.
func parseUUID(text []byte) (uuid.UUID, bool) {
	var id uuid.UUID
	if len(text) != 36 || text[8] != '-' || text[13] != '-' || text[18] != '-' || text[23] != '-' {
		return id, false
	}
	j := 0
	for i := 0; i < 36; {
		if i == 8 || i == 13 || i == 18 || i == 23 {
			i++
			continue
		}
		hi, lo := unhex(text[i]), unhex(text[i+1])
		if hi > 15 || lo > 15 {
			return uuid.Nil, false
		}
		id[j] = hi<<4 | lo
		j++
		i += 2
	}
	return id, true
}

func unhex(c byte) byte {
	switch {
	case '0' <= c && c <= '9':
		return c - '0'
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10
	}
	return 255
}
