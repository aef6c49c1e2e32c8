package audittrail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// Anchor is the retention anchor: where the chain continues after Prune
// removed its beginning. It is stored in AnchorFile as one JSON object.
type Anchor struct {
	// Segment is the newest segment removed. Segment files whose names
	// sort at or before it are covered by the anchor: they should be gone,
	// and verification skips them.
	Segment string `json:"segment"`
	// Seq and Hash are those of the last record removed (0 and GenesisHash
	// if the removed segments held none): the first retained record must
	// have seq Seq+1 and prev Hash.
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
	// PrunedAt is when the anchor was written, by the trail's clock.
	PrunedAt time.Time `json:"pruned_at"`
}

// errBadAnchor marks an anchor file that exists but cannot be used.
var errBadAnchor = errors.New("audittrail: bad anchor")

// readAnchor returns the anchor of dir, nil if there is none.
func readAnchor(dir string) (*Anchor, error) {
	b, err := os.ReadFile(filepath.Join(dir, AnchorFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("audittrail: read anchor: %w", err)
	}
	var a Anchor
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, fmt.Errorf("%w: %w", errBadAnchor, err)
	}
	if _, ok := parseSegmentName(a.Segment); !ok {
		return nil, fmt.Errorf("%w: segment %q is not a segment name", errBadAnchor, a.Segment)
	}
	if !isHash([]byte(a.Hash)) {
		return nil, fmt.Errorf("%w: hash %q is not 64 lowercase hex digits", errBadAnchor, a.Hash)
	}
	return &a, nil
}

// writeAnchor replaces the anchor atomically: temporary file, fsync,
// rename, fsync of the directory.
func writeAnchor(dir string, a *Anchor) error {
	b, err := json.Marshal(a)
	if err != nil {
		return fmt.Errorf("audittrail: write anchor: %w", err)
	}
	path := filepath.Join(dir, AnchorFile)
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("audittrail: write anchor: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("audittrail: write anchor: %w", err)
	}
	return syncDir(dir)
}

// Prune removes whole segments older than the retention and returns their
// file names. A segment is removed once its whole UTC day lies more than
// the retention in the past by the trail's clock (with 90 days, on
// 2026-11-26 the segments up to 2026-08-27 go). The newest segment is
// never removed, so the chain head stays on disk.
//
// Before removing anything Prune writes the anchor — seq and hash of the
// last record of the newest removed segment — atomically to AnchorFile;
// verification then starts from it. A crash between the two steps leaves
// segments the anchor covers; Open removes them.
//
// The removed records leave the index too: Has turns false for them, and
// a redelivery of an event older than the retention would be appended
// again (the broker's retention for the audit-trail topic is the same 90
// days, so that takes a replay from an older source).
func (t *Trail) Prune(ctx context.Context) (removed []string, err error) {
	t.maint.Lock()
	defer t.maint.Unlock()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil, ErrClosed
	}
	cutoff := t.cfg.now().Add(-t.cfg.retention)
	a := Anchor{Seq: 0, Hash: GenesisHash}
	if t.anchor != nil {
		a = *t.anchor
	}
	var victims []segment
	for _, s := range t.segs[:max(len(t.segs)-1, 0)] {
		if s.day.start().Add(24 * time.Hour).After(cutoff) {
			break
		}
		victims = append(victims, s)
		a.Segment = s.name
		if s.lastSeq > 0 {
			a.Seq, a.Hash = s.lastSeq, s.lastHash
		}
	}
	a.PrunedAt = t.cfg.now().UTC()
	t.mu.Unlock()
	if len(victims) == 0 {
		return nil, nil
	}

	if err := writeAnchor(t.dir, &a); err != nil {
		return nil, err
	}
	t.mu.Lock()
	t.anchor = &a
	t.mu.Unlock()
	for _, s := range victims {
		if err := os.Remove(t.path(s.name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return removed, fmt.Errorf("audittrail: prune: %w", err)
		}
		removed = append(removed, s.name)
	}
	if err := syncDir(t.dir); err != nil {
		return removed, err
	}
	t.dropIndex(len(victims), a.Seq)
	t.log.Info("audittrail: pruned segments", "removed", removed, "anchor_seq", a.Seq, "anchor_hash", a.Hash)
	return removed, nil
}

// dropIndex forgets the first n segments and every record up to seq.
func (t *Trail) dropIndex(n int, seq uint64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.segs = t.segs[n:]
	for id, s := range t.ids {
		if s <= seq {
			delete(t.ids, id)
		}
	}
	for job, ps := range t.jobs {
		i := 0
		for i < len(ps) && ps[i].seq <= seq {
			i++
		}
		if i == len(ps) {
			delete(t.jobs, job)
		} else if i > 0 {
			t.jobs[job] = append([]pos(nil), ps[i:]...)
		}
	}
}
