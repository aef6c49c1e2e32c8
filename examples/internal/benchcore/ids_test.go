package benchcore

import (
	"testing"

	"github.com/google/uuid"
)

func TestEventIDCarriesRunAndSeq(t *testing.T) {
	run := NewRunID()
	for _, seq := range []uint64{0, 1, 255, 1 << 32, MaxSeq} {
		id := run.EventID(seq)
		if id == uuid.Nil {
			t.Fatalf("EventID(%d) is nil", seq)
		}
		if id.Version() != 8 || id.Variant() != uuid.RFC4122 {
			t.Errorf("EventID(%d) = %s: version %d, variant %v; want 8, RFC 4122", seq, id, id.Version(), id.Variant())
		}
		got, ok := run.Seq(id)
		if !ok || got != seq {
			t.Errorf("Seq(EventID(%d)) = %d, %v", seq, got, ok)
		}
		got, ok = run.SeqString(id.String())
		if !ok || got != seq {
			t.Errorf("SeqString(%s) = %d, %v; want %d", id, got, ok, seq)
		}
	}
}

func TestSeqRejectsOtherIDs(t *testing.T) {
	run, other := NewRunID(), NewRunID()
	if run == other {
		t.Fatal("two random run IDs are equal")
	}
	for name, id := range map[string]uuid.UUID{
		"another run": other.EventID(7),
		"a UUIDv7":    uuid.Must(uuid.NewV7()),
		"nil":         uuid.Nil,
	} {
		if seq, ok := run.Seq(id); ok {
			t.Errorf("%s: Seq(%s) = %d, true; want false", name, id, seq)
		}
	}
	for _, s := range []string{"", "not-a-uuid", "0190f1c2-3b4a-7c5d-8e6f"} {
		if _, ok := run.SeqString(s); ok {
			t.Errorf("SeqString(%q) = true", s)
		}
	}
}
