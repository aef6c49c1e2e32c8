package auditsvc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"

	"github.com/cosmic-horizons/events/examples/internal/audittrail"
)

// ErrBroken matches the error VerifyCommand returns for a broken chain (a
// *BrokenError).
var ErrBroken = errors.New("auditsvc: audit trail broken")

// BrokenError is returned by VerifyCommand when the chain is broken; it
// names the first broken record.
type BrokenError struct {
	// Dir is the trail directory verified.
	Dir string
	// Record is the first broken record.
	Record BrokenRecord
}

// Error names the trail and the first broken record.
func (e *BrokenError) Error() string {
	return fmt.Sprintf("auditsvc: audit trail %s broken at %s", e.Dir, e.Record.String())
}

// Is reports whether target is ErrBroken.
func (e *BrokenError) Is(target error) bool { return target == ErrBroken }

// BrokenRecord locates and explains the first broken record of a trail.
type BrokenRecord struct {
	// Segment is the segment file name (audittrail.AnchorFile for an anchor
	// that cannot be read).
	Segment string `json:"segment"`
	// Record is the record's number in the segment (its line, from 1); 0
	// when the problem is not one line (a bad anchor, a missing tail).
	Record int `json:"record"`
	// Offset is the record's byte offset in the segment.
	Offset int64 `json:"offset"`
	// Seq and EventID identify the record (seq numbers records across the
	// whole trail). For a line that does not parse they are read from the
	// damaged bytes where possible, and Salvaged is set: they are hints,
	// not verified values.
	Seq      uint64 `json:"seq,omitempty"`
	EventID  string `json:"event_id,omitempty"`
	Salvaged bool   `json:"salvaged,omitempty"`
	// Problem is the kind of break (audittrail.Problem: "hash mismatch",
	// "unparsable", "seq gap", "prev mismatch", "missing tail"); Detail
	// says what was expected and found.
	Problem string `json:"problem"`
	Detail  string `json:"detail"`
}

// String describes the record and its problem in one line.
func (b BrokenRecord) String() string {
	s := b.Segment
	if b.Record > 0 {
		s = fmt.Sprintf("%s record %d (byte offset %d)", b.Segment, b.Record, b.Offset)
	}
	if b.Seq != 0 || b.EventID != "" {
		hint := ""
		if b.Salvaged {
			hint = " as read from the damaged line"
		}
		s += fmt.Sprintf(", seq %d, event %s%s", b.Seq, b.EventID, hint)
	}
	return fmt.Sprintf("%s: %s: %s", s, b.Problem, b.Detail)
}

// TornTail is an incomplete write at the end of the newest segment, what a
// crash leaves (never acknowledged; cut off when the trail is opened). It
// is not a break, but it cannot be told apart from a cut tail, so it is
// reported.
type TornTail struct {
	// Segment is the newest segment; Record and Offset locate the first
	// incomplete line (its number in the segment, from 1, and byte offset).
	Segment string `json:"segment"`
	Record  int    `json:"record"`
	Offset  int64  `json:"offset"`
	// Bytes is the length of the incomplete part, to the end of the file.
	Bytes int64 `json:"bytes"`
}

// VerifyResult is a verification as GET /audit/verify serves it.
type VerifyResult struct {
	// OK is true when the chain is intact.
	OK bool `json:"ok"`
	// Records counts the intact records checked; Segments are the segment
	// files checked, in order; Skipped the ones the anchor covers.
	Records  int      `json:"records"`
	Segments []string `json:"segments"`
	Skipped  []string `json:"skipped,omitempty"`
	// Anchor is the retention anchor verification started from, if any.
	Anchor *audittrail.Anchor `json:"anchor,omitempty"`
	// LastSeq and LastHash are those of the last intact record: the head
	// of an intact trail.
	LastSeq  uint64 `json:"last_seq"`
	LastHash string `json:"last_hash"`
	// Broken is the first broken record, nil when OK.
	Broken *BrokenRecord `json:"broken,omitempty"`
	// TornTail is set when the newest segment ends in an incomplete write.
	TornTail *TornTail `json:"torn_tail,omitempty"`
}

// NewVerifyResult turns a report on the trail in dir into a VerifyResult.
// For a line that does not parse, it reads the line back from dir to find
// its seq and event ID where it can.
func NewVerifyResult(dir string, rep *audittrail.VerifyReport) *VerifyResult {
	res := &VerifyResult{
		OK: rep.OK(), Records: rep.Records, Segments: rep.Segments, Skipped: rep.Skipped,
		Anchor: rep.Anchor, LastSeq: rep.LastSeq, LastHash: rep.LastHash,
	}
	if res.Segments == nil {
		res.Segments = []string{}
	}
	if b := rep.Broken; b != nil {
		br := &BrokenRecord{
			Segment: b.Segment, Record: b.Line, Offset: b.Offset, Seq: b.Seq,
			Problem: string(b.Problem), Detail: b.Detail,
		}
		if b.Seq != 0 {
			br.EventID = b.EventID.String()
		} else if b.Line > 0 && b.Segment != audittrail.AnchorFile {
			br.Seq, br.EventID = salvage(filepath.Join(dir, b.Segment), b.Offset)
			br.Salvaged = br.Seq != 0 || br.EventID != ""
		}
		res.Broken = br
	}
	if t := rep.TornTail; t != nil {
		res.TornTail = &TornTail{Segment: t.Segment, Record: t.Line, Offset: t.Offset, Bytes: t.Bytes}
	}
	return res
}

var (
	seqRE     = regexp.MustCompile(`"seq":([0-9]{1,20}),`)
	eventIDRE = regexp.MustCompile(`"event_id":"([0-9a-fA-F-]{36})"`)
)

// salvage reads the start of the line at off of the segment at path and
// returns the seq and event ID it appears to carry (zero values when not
// found). Both come before the event body, within the first few hundred
// bytes of a record.
func salvage(path string, off int64) (seq uint64, eventID string) {
	f, err := os.Open(path)
	if err != nil {
		return 0, ""
	}
	defer f.Close()
	buf := make([]byte, 4096)
	n, _ := f.ReadAt(buf, off)
	line := buf[:n]
	if i := bytes.IndexByte(line, '\n'); i >= 0 {
		line = line[:i]
	}
	if m := seqRE.FindSubmatch(line); m != nil {
		seq, _ = strconv.ParseUint(string(m[1]), 10, 64)
	}
	if m := eventIDRE.FindSubmatch(line); m != nil {
		eventID = string(m[1])
	}
	return seq, eventID
}

// VerifyCommand is the `audit verify` command: it verifies the trail in
// dir without opening it for writing (it may run beside the service),
// prints the result to w, and returns nil when the chain is intact, a
// *BrokenError (matching ErrBroken) naming the first broken record (its
// segment file, record number, seq and event ID) when it is not, and
// another error when the trail cannot be read.
func VerifyCommand(ctx context.Context, dir string, w io.Writer) error {
	rep, err := audittrail.VerifyDir(ctx, dir)
	if err != nil {
		fmt.Fprintf(w, "audit trail %s: cannot verify: %v\n", dir, err)
		return fmt.Errorf("auditsvc: verify %s: %w", dir, err)
	}
	res := NewVerifyResult(dir, rep)
	res.print(w, dir)
	if res.Broken != nil {
		return &BrokenError{Dir: dir, Record: *res.Broken}
	}
	return nil
}

func (r *VerifyResult) print(w io.Writer, dir string) {
	if r.Broken != nil {
		fmt.Fprintf(w, "audit trail %s: BROKEN\n", dir)
		fmt.Fprintf(w, "  first broken record: %s\n", r.Broken)
		fmt.Fprintf(w, "  intact before it: %d record(s), up to seq %d hash %s\n", r.Records, r.LastSeq, r.LastHash)
	} else {
		fmt.Fprintf(w, "audit trail %s: intact\n", dir)
		fmt.Fprintf(w, "  records: %d in %d segment(s)\n", r.Records, len(r.Segments))
		fmt.Fprintf(w, "  head: seq %d hash %s\n", r.LastSeq, r.LastHash)
		if len(r.Segments) == 0 {
			fmt.Fprintf(w, "  warning: no segment files (an empty trail, or the wrong directory)\n")
		}
	}
	if n := len(r.Segments); n > 0 {
		fmt.Fprintf(w, "  segments checked: %s … %s\n", r.Segments[0], r.Segments[n-1])
	}
	if a := r.Anchor; a != nil {
		fmt.Fprintf(w, "  anchor: segments up to %s pruned, chain continues after seq %d hash %s\n", a.Segment, a.Seq, a.Hash)
	}
	if len(r.Skipped) > 0 {
		fmt.Fprintf(w, "  skipped (covered by the anchor, left by an interrupted prune): %v\n", r.Skipped)
	}
	if t := r.TornTail; t != nil {
		fmt.Fprintf(w, "  torn tail: %s from record %d (offset %d, %d bytes): an unacknowledged write cut by a crash, or the last records cut off; compare the head with a published one\n",
			t.Segment, t.Record, t.Offset, t.Bytes)
	}
}
