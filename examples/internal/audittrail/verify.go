package audittrail

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/google/uuid"
)

// Problem names what is wrong with a broken record.
type Problem string

// The problems Verify reports.
const (
	// ProblemUnparsable: the line is not a record — not JSON, no hash
	// suffix, a required field missing, or (in a segment other than the
	// newest) cut short without its newline. Also used for an anchor file
	// that cannot be read.
	ProblemUnparsable Problem = "unparsable"
	// ProblemHashMismatch: the stored hash is not the hash of the record's
	// prev and body; the record was changed after it was written.
	ProblemHashMismatch Problem = "hash mismatch"
	// ProblemSeqGap: the record's seq is not the previous seq plus one:
	// records (or whole segments) were removed, reordered or inserted.
	ProblemSeqGap Problem = "seq gap"
	// ProblemPrevMismatch: the record's prev is not the previous record's
	// hash (or the anchor's, or GenesisHash).
	ProblemPrevMismatch Problem = "prev mismatch"
	// ProblemMissingTail: reported by Trail.Verify only, when the disk ends
	// before the chain head the open trail has written (records at the end
	// were removed while it ran).
	ProblemMissingTail Problem = "missing tail"
)

// Break describes the first broken record of a trail.
type Break struct {
	// Segment is the file name (AnchorFile for a bad anchor).
	Segment string
	// Line is the line number in the segment, from 1, and Offset its byte
	// offset.
	Line   int
	Offset int64
	// Seq and EventID are the record's, zero when the line does not parse.
	Seq     uint64
	EventID uuid.UUID
	Problem Problem
	// Detail says what was expected and found.
	Detail string
}

// String describes the break in one line.
func (b *Break) String() string {
	s := fmt.Sprintf("%s line %d (offset %d)", b.Segment, b.Line, b.Offset)
	if b.Seq != 0 {
		s += fmt.Sprintf(" seq %d event %s", b.Seq, b.EventID)
	}
	return fmt.Sprintf("%s: %s: %s", s, b.Problem, b.Detail)
}

// TornTail describes a trailing run of incomplete or unparsable lines at
// the end of the newest segment: what a crash during a write leaves. Those
// records were never acknowledged, and Open cuts them off, so it is not a
// break; but it is indistinguishable from someone cutting the last
// records, so it is reported.
type TornTail struct {
	// Segment is the newest segment's file name; Line and Offset locate
	// the first line of the run.
	Segment string
	Line    int
	Offset  int64
	// Bytes is the length of the run, up to the end of the file.
	Bytes int64
}

// VerifyReport is the result of verifying a trail.
type VerifyReport struct {
	// Anchor is the retention anchor verification started from; nil when
	// it started from the genesis (seq 1, prev GenesisHash).
	Anchor *Anchor
	// Segments are the segment files checked, in order; Skipped are
	// segment files the anchor covers (left over by an interrupted Prune).
	Segments, Skipped []string
	// Records counts the records found intact.
	Records int
	// LastSeq and LastHash are those of the last intact record (the
	// anchor's, or 0 and GenesisHash, when there is none). When the trail
	// is intact they are its head, to be compared with a head published
	// earlier (see Trail.Last).
	LastSeq  uint64
	LastHash string
	// Broken is the first broken record, nil if the chain is intact.
	Broken *Break
	// TornTail is set when the newest segment ends in a torn write.
	TornTail *TornTail
}

// OK reports whether the chain is intact.
func (r *VerifyReport) OK() bool { return r.Broken == nil }

// VerifyDir verifies the trail in dir without opening it for writing (the
// `audit verify` command): it re-reads every segment, recomputes every
// record's hash, and checks every link (prev) and seq from the anchor, or
// from the genesis, to the last record. It returns the first broken
// record in the report; the error is only for failures to read (or ctx).
// Run against a trail another process is appending to, it may see a
// partial last line and report a TornTail.
func VerifyDir(ctx context.Context, dir string) (*VerifyReport, error) {
	return verify(ctx, dir, nil)
}

// Verify verifies the open trail like VerifyDir, concurrently with
// Appends: it checks the records written when it started, and also that
// the disk still holds the chain head the trail had written then (a torn
// tail is a break here, since the trail itself never leaves one).
func (t *Trail) Verify(ctx context.Context) (*VerifyReport, error) {
	t.maint.RLock()
	defer t.maint.RUnlock()
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	v := &liveView{seq: t.seq, hash: t.hash}
	if len(t.segs) > 0 {
		v.active, v.size = t.active().name, t.off
	}
	t.mu.Unlock()
	return verify(ctx, t.dir, v)
}

// liveView is what an open trail had written when Verify started.
type liveView struct {
	active string // newest segment ("" if none) and its size
	size   int64
	seq    uint64 // chain head
	hash   string
}

func verify(ctx context.Context, dir string, live *liveView) (*VerifyReport, error) {
	rep := &VerifyReport{LastHash: GenesisHash}
	anchor, err := readAnchor(dir)
	if errors.Is(err, errBadAnchor) {
		rep.Broken = &Break{Segment: AnchorFile, Problem: ProblemUnparsable, Detail: err.Error()}
		return rep, nil
	}
	if err != nil {
		return nil, err
	}
	if anchor != nil {
		rep.Anchor = anchor
		rep.LastSeq, rep.LastHash = anchor.Seq, anchor.Hash
	}
	files, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	var check []segmentFile
	for _, sf := range files {
		switch {
		case anchor != nil && sf.name <= anchor.Segment:
			rep.Skipped = append(rep.Skipped, sf.name)
		case live != nil && sf.name > live.active:
			// created after Verify started
		default:
			check = append(check, sf)
		}
	}
	for i, sf := range check {
		limit := int64(-1)
		if live != nil && sf.name == live.active {
			limit = live.size
		}
		newest := i == len(check)-1 && live == nil
		if err := verifySegment(ctx, dir, sf.name, limit, newest, rep); err != nil {
			return nil, err
		}
		rep.Segments = append(rep.Segments, sf.name)
		if rep.Broken != nil {
			return rep, nil
		}
	}
	if live != nil && (rep.LastSeq != live.seq || rep.LastHash != live.hash) {
		rep.Broken = &Break{
			Segment: live.active, Problem: ProblemMissingTail,
			Detail: fmt.Sprintf("the trail's head is seq %d hash %s, the disk ends at seq %d hash %s", live.seq, live.hash, rep.LastSeq, rep.LastHash),
		}
	}
	return rep, nil
}

// verifySegment checks one segment, continuing from rep.LastSeq and
// rep.LastHash, and stops at the first break.
func verifySegment(ctx context.Context, dir, name string, limit int64, newest bool, rep *VerifyReport) error {
	var torn *scanned
	errStop := errors.New("stop")
	size, err := scanSegment(ctx, filepath.Join(dir, name), limit, func(s *scanned) error {
		if s.bad() && newest && !s.joined {
			if torn == nil {
				c := *s
				torn = &c
			}
			return nil
		}
		if torn != nil { // bad lines followed by more: not a tail
			rep.Broken = unparsable(name, torn, rep.LastSeq+1)
			return errStop
		}
		if s.bad() {
			rep.Broken = unparsable(name, s, rep.LastSeq+1)
			return errStop
		}
		if p, detail := checkRecord(s, rep.LastSeq+1, rep.LastHash); p != "" {
			rep.Broken = &Break{Segment: name, Line: s.no, Offset: s.off, Seq: s.head.Seq, EventID: s.head.EventID, Problem: p, Detail: detail}
			return errStop
		}
		rep.Records++
		rep.LastSeq, rep.LastHash = s.head.Seq, s.stored
		return nil
	})
	if errors.Is(err, errStop) {
		return nil
	}
	if err != nil {
		return err
	}
	if torn != nil {
		rep.TornTail = &TornTail{Segment: name, Line: torn.no, Offset: torn.off, Bytes: size - torn.off}
	}
	return nil
}

func unparsable(name string, s *scanned, wantSeq uint64) *Break {
	why := lineError(s).Error()
	if s.joined {
		why = "a record is followed by other bytes instead of a newline"
	}
	return &Break{
		Segment: name, Line: s.no, Offset: s.off, Problem: ProblemUnparsable,
		Detail: fmt.Sprintf("%s (expected seq %d here)", why, wantSeq),
	}
}

// checkRecord checks a parsed record against its own hash and against the
// seq and prev it must have; it returns "" when all hold.
func checkRecord(s *scanned, wantSeq uint64, wantPrev string) (Problem, string) {
	switch {
	case s.computed != s.stored:
		return ProblemHashMismatch, fmt.Sprintf("stored hash %s, computed %s", s.stored, s.computed)
	case s.head.Seq != wantSeq:
		return ProblemSeqGap, fmt.Sprintf("expected seq %d, found %d", wantSeq, s.head.Seq)
	case s.head.Prev != wantPrev:
		return ProblemPrevMismatch, fmt.Sprintf("prev %s, expected %s", s.head.Prev, wantPrev)
	}
	return "", ""
}
