package benchcore

import (
	"crypto/rand"
	"encoding/binary"

	"github.com/google/uuid"
)

// MaxSeq is the largest sequence number an event ID can carry.
const MaxSeq = 1<<62 - 1

// RunID names one run. The event IDs of a run are version-8 (custom) UUIDs:
// the first 8 bytes are the RunID, the last 8 the sequence number, so a
// consumer recognises the events of its own run (a queue left over from an
// earlier run holds foreign ones) and recovers each event's number from its
// ID alone.
type RunID [8]byte

// NewRunID returns a random RunID.
func NewRunID() RunID {
	var r RunID
	_, _ = rand.Read(r[:])  // crypto/rand.Read never fails since Go 1.24
	r[6] = 0x80 | r[6]&0x0f // the UUID version nibble: 8
	return r
}

// EventID returns the event ID of sequence number seq (at most MaxSeq).
func (r RunID) EventID(seq uint64) uuid.UUID {
	var u uuid.UUID
	copy(u[:8], r[:])
	u[6] = 0x80 | u[6]&0x0f
	binary.BigEndian.PutUint64(u[8:], seq&MaxSeq)
	u[8] |= 0x80 // RFC 9562 variant: 10xx
	return u
}

// Seq returns the sequence number carried by id, and false when id is not an
// event ID of this run.
func (r RunID) Seq(id uuid.UUID) (uint64, bool) {
	want := r
	want[6] = 0x80 | want[6]&0x0f
	if [8]byte(id[:8]) != want || id[8]&0xc0 != 0x80 {
		return 0, false
	}
	return binary.BigEndian.Uint64(id[8:]) & MaxSeq, true
}

// SeqString is Seq for the text form of an ID (the ce_id header).
func (r RunID) SeqString(id string) (uint64, bool) {
	u, err := uuid.Parse(id)
	if err != nil {
		return 0, false
	}
	return r.Seq(u)
}
