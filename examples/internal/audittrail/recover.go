package audittrail

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// load rebuilds the index and the chain head from the directory, cutting a
// torn tail off the newest segment and removing leftovers of an
// interrupted Prune. It runs before the Trail is shared.
func (t *Trail) load(ctx context.Context) error {
	anchor, anchorErr := readAnchor(t.dir)
	if anchorErr != nil {
		if !errors.Is(anchorErr, errBadAnchor) {
			return anchorErr
		}
		t.log.Error("audittrail: anchor unreadable; Verify will report it", "err", anchorErr)
	}
	t.anchor = anchor
	if anchor != nil {
		t.seq, t.hash = anchor.Seq, anchor.Hash
	}
	files, err := listSegments(t.dir)
	if err != nil {
		return err
	}
	if files, err = t.removeLeftovers(files); err != nil {
		return err
	}
	chainWarned := false
	for i, sf := range files {
		if err := t.loadSegment(ctx, sf, i == len(files)-1, &chainWarned); err != nil {
			return err
		}
	}
	if anchorErr != nil && t.seq == 0 {
		return fmt.Errorf("audittrail: open %s: no record to continue the chain from: %w", t.dir, anchorErr)
	}
	if len(t.segs) == 0 {
		return nil
	}
	active := t.segs[len(t.segs)-1]
	f, err := os.OpenFile(t.path(active.name), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("audittrail: open: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audittrail: open: %w", err)
	}
	// Open treats every record it loaded as durable: a redelivery of one is
	// answered (false, nil) and acknowledged. But a process that crashed
	// (rather than the machine) leaves its unsynced writes in the page
	// cache, where this load read them, so fsync them now, and the
	// directory entry of the newest segment with them. Older segments were
	// fsynced before a newer one was created.
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("audittrail: open: fsync %s: %w", active.name, err)
	}
	t.syncs++
	if err := syncDir(t.dir); err != nil {
		f.Close()
		return err
	}
	t.f, t.off = f, st.Size()
	t.durableName, t.durableSize = active.name, t.off
	return nil
}

// removeLeftovers deletes segments the anchor covers: a Prune writes the
// anchor first and then removes segments, so a crash in between leaves
// them behind. It returns the remaining segments.
func (t *Trail) removeLeftovers(files []segmentFile) ([]segmentFile, error) {
	if t.anchor == nil {
		return files, nil
	}
	keep := files[:0:0]
	for _, sf := range files {
		if sf.name > t.anchor.Segment {
			keep = append(keep, sf)
			continue
		}
		if err := os.Remove(t.path(sf.name)); err != nil {
			return nil, fmt.Errorf("audittrail: remove pruned segment: %w", err)
		}
		t.log.Warn("audittrail: removed a segment left over by an interrupted prune", "segment", sf.name, "anchor", t.anchor.Segment)
	}
	if len(keep) < len(files) {
		if err := syncDir(t.dir); err != nil {
			return nil, err
		}
	}
	return keep, nil
}

// loadSegment indexes one segment. In the newest segment a trailing run of
// bad lines is a torn tail and is cut off; bad lines elsewhere are logged
// and skipped.
func (t *Trail) loadSegment(ctx context.Context, sf segmentFile, newest bool, chainWarned *bool) error {
	seg := segment{day: sf.day, name: sf.name}
	var torn *scanned
	unterminated := false
	notRecord := func(s *scanned) {
		t.log.Warn("audittrail: line is not a record; Verify will report it", "segment", sf.name, "line", s.no, "err", lineError(s))
	}
	size, err := scanSegment(ctx, t.path(sf.name), -1, func(s *scanned) error {
		if s.bad() && newest && !s.joined {
			if torn == nil {
				c := *s
				torn = &c
			}
			return nil
		}
		if torn != nil { // bad lines followed by more: not a tail
			notRecord(torn)
			torn = nil
		}
		if s.bad() {
			notRecord(s)
			unterminated = !s.newline
			return nil
		}
		if !*chainWarned {
			if p, detail := checkRecord(s, t.seq+1, t.hash); p != "" {
				t.log.Warn("audittrail: chain broken; Verify will report it", "segment", sf.name, "line", s.no, "problem", p, "detail", detail)
				*chainWarned = true
			}
		}
		h := s.head
		if _, dup := t.ids[h.EventID]; dup {
			t.log.Warn("audittrail: event recorded twice", "segment", sf.name, "line", s.no, "event_id", h.EventID)
		} else {
			t.ids[h.EventID] = h.Seq
		}
		if h.JobID != "" {
			t.jobs[h.JobID] = append(t.jobs[h.JobID], pos{seq: h.Seq, off: s.off, size: uint32(s.size), day: sf.day})
		}
		t.seq, t.hash = h.Seq, s.stored
		seg.lastSeq, seg.lastHash = t.seq, t.hash
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case torn != nil:
		if err := t.cutTornTail(sf.name, torn, size); err != nil {
			return err
		}
	case unterminated && newest:
		// Not a torn write (see joinedRecord) but evidence: keep it, and
		// end it so that the next record starts on a line of its own.
		if err := t.terminate(sf.name); err != nil {
			return err
		}
	}
	t.segs = append(t.segs, seg)
	return nil
}

// cutTornTail saves the bytes of segment name from the torn line on to a
// quarantine file, then truncates the segment there.
func (t *Trail) cutTornTail(name string, torn *scanned, size int64) error {
	path := t.path(name)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("audittrail: repair torn tail: %w", err)
	}
	defer f.Close()
	q, err := os.CreateTemp(t.dir, name+".torn-*")
	if err != nil {
		return fmt.Errorf("audittrail: repair torn tail: %w", err)
	}
	_, err = io.Copy(q, io.NewSectionReader(f, torn.off, size-torn.off))
	if err == nil {
		err = q.Sync()
	}
	if cerr := q.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = syncDir(t.dir)
	}
	if err == nil {
		err = f.Truncate(torn.off)
	}
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		return fmt.Errorf("audittrail: repair torn tail of %s: %w", name, err)
	}
	t.log.Warn("audittrail: cut a torn tail (an unacknowledged write interrupted by a crash)",
		"segment", name, "line", torn.no, "offset", torn.off, "bytes", size-torn.off,
		"err", lineError(torn), "saved_to", filepath.Base(q.Name()))
	return nil
}

// terminate appends a newline to segment name.
func (t *Trail) terminate(name string) error {
	f, err := os.OpenFile(t.path(name), os.O_WRONLY|os.O_APPEND, 0)
	if err == nil {
		_, err = f.Write([]byte{'\n'})
		if serr := f.Sync(); err == nil {
			err = serr
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}
	if err != nil {
		return fmt.Errorf("audittrail: terminate last line of %s: %w", name, err)
	}
	t.log.Warn("audittrail: added a newline after a damaged last line", "segment", name)
	return nil
}

// lineError says why a bad line is not a record.
func lineError(s *scanned) error {
	if s.err != nil {
		return s.err
	}
	return errors.New("no newline at the end")
}
