package audittrail

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// File names in a trail directory.
const (
	segmentPrefix = "segment-"
	segmentSuffix = ".jsonl"
	dayLayout     = "2006-01-02"
	// AnchorFile is the name of the retention anchor in a trail directory.
	AnchorFile = "anchor.json"
	lockFile   = "LOCK"
)

const secondsPerDay = 24 * 60 * 60

// day numbers UTC days since 1970-01-01.
type day int32

func dayOf(t time.Time) day {
	s := t.Unix()
	d := s / secondsPerDay
	if s < 0 && s%secondsPerDay != 0 {
		d--
	}
	return day(d)
}

func (d day) start() time.Time { return time.Unix(int64(d)*secondsPerDay, 0).UTC() }

// SegmentName returns the file name of the segment holding records
// appended on t's UTC date: "segment-YYYY-MM-DD.jsonl".
func SegmentName(t time.Time) string { return segmentName(dayOf(t)) }

func segmentName(d day) string {
	return segmentPrefix + d.start().Format(dayLayout) + segmentSuffix
}

// parseSegmentName returns the day of a segment file name, and false for
// any other name (anchor, lock, quarantined torn tails, foreign files).
func parseSegmentName(name string) (day, bool) {
	if len(name) != len(segmentPrefix)+len(dayLayout)+len(segmentSuffix) ||
		name[:len(segmentPrefix)] != segmentPrefix || name[len(name)-len(segmentSuffix):] != segmentSuffix {
		return 0, false
	}
	t, err := time.Parse(dayLayout, name[len(segmentPrefix):len(segmentPrefix)+len(dayLayout)])
	if err != nil || segmentName(dayOf(t)) != name {
		return 0, false
	}
	return dayOf(t), true
}

type segmentFile struct {
	name string
	day  day
}

// listSegments returns the segment files of dir in trail order (by date,
// which is by name).
func listSegments(dir string) ([]segmentFile, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audittrail: list %s: %w", dir, err)
	}
	var out []segmentFile
	for _, e := range ents { // ReadDir sorts by name
		if d, ok := parseSegmentName(e.Name()); ok && e.Type().IsRegular() {
			out = append(out, segmentFile{name: e.Name(), day: d})
		}
	}
	return out, nil
}

// syncDir makes created, renamed and removed directory entries durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("audittrail: sync dir: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("audittrail: sync dir %s: %w", dir, err)
	}
	return nil
}

// scanned is one line of a segment as scans see it.
type scanned struct {
	no      int   // line number, from 1
	off     int64 // byte offset of the line in the segment
	size    int   // bytes, without the newline
	newline bool  // false only for a last line cut short
	// For a line that parses (err == nil):
	head     recordHead
	stored   string // hash field
	computed string // ChainHash(head.Prev, body)
	// err says why the line is not a record.
	err error
	// joined is set for a bad line that starts with a complete record
	// followed by a byte other than a newline or zero: the newline after
	// a record was changed, which a crash never does.
	joined bool
}

// bad reports whether the line is not a complete record: a torn tail when
// it and every line after it in the newest segment are bad, unless joined.
func (s *scanned) bad() bool { return s.err != nil || !s.newline }

// scanSegment calls fn for every line of the segment at path, reading at
// most limit bytes (all when limit < 0). It returns the number of bytes
// read. fn must not keep s.
func scanSegment(ctx context.Context, path string, limit int64, fn func(s *scanned) error) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, fmt.Errorf("audittrail: %w", err)
	}
	defer f.Close()
	var r io.Reader = f
	if limit >= 0 {
		r = io.LimitReader(f, limit)
	}
	lr := lineReader{br: bufio.NewReaderSize(r, 64<<10)}
	var body []byte
	for {
		if lr.no%1024 == 0 {
			if err := ctx.Err(); err != nil {
				return lr.off, err
			}
		}
		line, off, newline, err := lr.next()
		if errors.Is(err, io.EOF) {
			return lr.off, nil
		}
		if err != nil {
			return lr.off, fmt.Errorf("audittrail: read %s: %w", path, err)
		}
		s := scanned{no: lr.no, off: off, size: len(line), newline: newline}
		s.stored, body, s.err = splitLine(line, body)
		if s.err == nil {
			s.head, s.err = parseHead(body)
		}
		if s.err == nil {
			s.computed = ChainHash(s.head.Prev, body)
		}
		if s.bad() {
			s.joined = joinedRecord(line)
		}
		if err := fn(&s); err != nil {
			return lr.off, err
		}
	}
}

// lineReader splits a stream into lines of any length.
type lineReader struct {
	br  *bufio.Reader
	buf []byte
	off int64 // bytes consumed
	no  int   // lines returned
}

// next returns the next line without its newline, its offset, and whether
// it ended with a newline; io.EOF when nothing is left. The line is valid
// until the next call.
func (r *lineReader) next() (line []byte, off int64, newline bool, err error) {
	off = r.off
	r.buf = r.buf[:0]
	for {
		frag, err := r.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			r.buf = append(r.buf, frag...)
			continue
		}
		line := frag
		if len(r.buf) > 0 {
			r.buf = append(r.buf, frag...)
			line = r.buf
		}
		r.off += int64(len(line))
		switch {
		case err == nil:
			r.no++
			return line[:len(line)-1], off, true, nil
		case errors.Is(err, io.EOF) && len(line) > 0:
			r.no++
			return line, off, false, nil
		default:
			return nil, off, false, err
		}
	}
}

// joinedRecord reports whether line starts with a complete record, intact
// by its own hash, followed by a byte that is neither a newline nor zero:
// the newline after a record was changed. A crash leaves a prefix of what
// was written, with blocks that never reached the disk read back as
// zeros; it never puts another byte where a newline was written.
func joinedRecord(line []byte) bool {
	from := 0
	for {
		i := bytes.Index(line[from:], []byte(hashField))
		if i < 0 {
			return false
		}
		end := from + i + suffixLen
		from += i + 1
		if end >= len(line) {
			return false
		}
		if line[end] == 0 {
			continue
		}
		hash, body, err := splitLine(line[:end], nil)
		if err != nil {
			continue
		}
		h, err := parseHead(body)
		if err == nil && ChainHash(h.Prev, body) == hash {
			return true
		}
	}
}
