package audittrail

import (
	"context"
	"fmt"
	"os"
	"time"
)

// Append records e unless its event ID is already in the trail.
//
// It returns (true, nil) once the record is written and fsynced: only then
// may the caller acknowledge the message. If the event ID is already
// recorded it writes nothing and returns (false, nil) — after waiting, if
// that earlier record's fsync is still in progress, so that the answer
// also means "durable". A redelivered event is thus recorded once.
//
// The record goes to the segment of the clock's current UTC date (a new
// segment starts when the date changes; if the clock goes back, records
// keep going to the newest segment). Its seq is the previous seq plus one,
// its prev the previous record's hash.
//
// Concurrent Appends share fsyncs (group commit; see CommitDelay). If ctx
// ends before an fsync covers the record, Append returns ctx.Err(): the
// caller must treat the event as not acknowledged, although the record may
// still become durable — a later redelivery of the same event then returns
// (false, nil). Errors wrapping ErrInvalidEntry concern e alone; errors
// wrapping ErrFailed or ErrClosed concern the trail.
func (t *Trail) Append(ctx context.Context, e Entry) (appended bool, err error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	tail, err := e.encodeTail()
	if err != nil {
		return false, err
	}
	seq, appended, err := t.write(&e, tail)
	if err != nil {
		return false, err
	}
	if err := t.waitDurable(ctx, seq); err != nil {
		return false, err
	}
	return appended, nil
}

// write appends the record for e to the active segment, or finds the
// existing record of e's event ID. It returns the seq to wait for.
func (t *Trail) write(e *Entry, tail []byte) (seq uint64, appended bool, err error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return 0, false, ErrClosed
	}
	if err := t.failure(); err != nil {
		return 0, false, err
	}
	if seq, ok := t.ids[e.EventID]; ok {
		t.stats.Duplicates++
		return seq, false, nil
	}
	now := t.cfg.now().UTC()
	if err := t.ensureSegment(now); err != nil {
		return 0, false, t.fail(err)
	}
	seq = t.seq + 1
	body := appendBody(make([]byte, 0, len(tail)+256), seq, t.hash, now, tail)
	hash := ChainHash(t.hash, body)
	line := appendLine(body, hash)
	if _, err := t.f.Write(line); err != nil {
		// A partial line may be on disk. Rather than guess, stop: Open
		// cuts it off as a torn tail.
		return 0, false, t.fail(fmt.Errorf("write %s: %w", t.active().name, err))
	}
	t.ids[e.EventID] = seq
	if e.JobID != "" {
		t.jobs[e.JobID] = append(t.jobs[e.JobID], pos{seq: seq, off: t.off, size: uint32(len(line) - 1), day: t.active().day})
	}
	t.off += int64(len(line))
	t.seq, t.hash = seq, hash
	a := t.active()
	a.lastSeq, a.lastHash = seq, hash
	t.stats.Appended++
	return seq, true, nil
}

func (t *Trail) active() *segment { return &t.segs[len(t.segs)-1] }

// ensureSegment makes the active segment the one for now's date, rolling
// over when the date has moved on. The segment rolled over from is fsynced
// first, so every byte of an older segment is durable before a newer one
// exists; the directory is fsynced after the new file is created. mu held.
func (t *Trail) ensureSegment(now time.Time) error {
	d := dayOf(now)
	if t.f != nil && d <= t.active().day {
		return nil
	}
	if t.f != nil {
		if err := t.f.Sync(); err != nil {
			return fmt.Errorf("fsync %s: %w", t.active().name, err)
		}
		// A commit round may be fsyncing it right now: the next round
		// closes it.
		t.retired = append(t.retired, t.f)
		t.f = nil
	}
	name := segmentName(d)
	f, err := os.OpenFile(t.path(name), os.O_WRONLY|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o640)
	if err != nil {
		return fmt.Errorf("create segment: %w", err)
	}
	if err := syncDir(t.dir); err != nil {
		f.Close()
		return err
	}
	t.f, t.off = f, 0
	t.segs = append(t.segs, segment{day: d, name: name})
	return nil
}
