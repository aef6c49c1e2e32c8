package audittrail

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// ByJob returns the records of a job in trail order, read back from disk
// and each checked against its own hash (an error wrapping ErrCorrupt
// otherwise; the chain links are Verify's business). Records whose fsync
// is still in progress are left out: ByJob shows what is acknowledged. A
// job with no records gives an empty slice.
//
// Memory: the index keeps, per retained record, its event ID and seq in a
// map and, for records with a job ID, a 24-byte position, plus each job ID
// once: measured at 85 to 100 bytes per record (10 to 100 records per
// job), so about 100 MB per million retained records. The records
// themselves stay on disk; ByJob reads one line per record.
func (t *Trail) ByJob(ctx context.Context, jobID string) ([]Record, error) {
	t.maint.RLock()
	defer t.maint.RUnlock()
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	ps := slices.Clone(t.jobs[jobID])
	t.mu.Unlock()
	synced := t.syncedSeq()

	out := make([]Record, 0, len(ps))
	var (
		f    *os.File
		fday day
	)
	defer func() {
		if f != nil {
			f.Close()
		}
	}()
	for _, p := range ps {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if p.seq > synced {
			continue
		}
		if f == nil || p.day != fday {
			if f != nil {
				f.Close()
			}
			var err error
			if f, err = os.Open(t.path(segmentName(p.day))); err != nil {
				return nil, fmt.Errorf("audittrail: by job %q: %w", jobID, err)
			}
			fday = p.day
		}
		buf := make([]byte, p.size)
		if _, err := f.ReadAt(buf, p.off); err != nil {
			return nil, fmt.Errorf("audittrail: by job %q: read %s at %d: %w", jobID, segmentName(p.day), p.off, err)
		}
		r, err := decodeRecord(buf)
		if err != nil {
			return nil, fmt.Errorf("%w: %s offset %d: %w", ErrCorrupt, segmentName(p.day), p.off, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// ReadDir returns every record of the trail in dir, in trail order, without
// opening it for writing (for exports and tools; it may run while another
// process appends, and then leaves out a last line still being written).
// It does not check hashes or links (VerifyDir does): a complete line that
// is not a record is an error naming its segment and line.
func ReadDir(ctx context.Context, dir string) ([]Record, error) {
	segs, err := listSegments(dir)
	if err != nil {
		return nil, err
	}
	var out []Record
	for _, s := range segs {
		path := filepath.Join(dir, s.name)
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("audittrail: %w", err)
		}
		lr := lineReader{br: bufio.NewReaderSize(f, 64<<10)}
		for {
			line, _, newline, err := lr.next()
			if errors.Is(err, io.EOF) || (err == nil && !newline) {
				break
			}
			if err == nil && lr.no%1024 == 0 {
				err = ctx.Err()
			}
			if err != nil {
				f.Close()
				return nil, fmt.Errorf("audittrail: read %s: %w", s.name, err)
			}
			var r Record
			if err := json.Unmarshal(line, &r); err != nil {
				f.Close()
				return nil, fmt.Errorf("audittrail: %s line %d: %w: %v", s.name, lr.no, ErrCorrupt, err)
			}
			out = append(out, r)
		}
		f.Close()
	}
	return out, nil
}
