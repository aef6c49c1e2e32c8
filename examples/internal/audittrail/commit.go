package audittrail

import (
	"context"
	"fmt"
	"time"
)

// Group commit.
//
// Appenders write their line under mu, then call waitDurable with their
// seq. The first waiter that finds no commit in progress becomes the
// leader: it takes a snapshot of the active segment and the last seq
// written, fsyncs, publishes the new durable seq and closes the round's
// channel. Waiters whose records were written after the snapshot wait for
// that round to end and then elect the next leader among themselves, whose
// fsync covers all of them. Under load one fsync thus covers every append
// that arrived while the previous one ran, and no goroutine is needed
// besides the callers'.

// waitDurable returns when an fsync covers seq, when the trail fails, or
// when ctx ends.
func (t *Trail) waitDurable(ctx context.Context, seq uint64) error {
	for {
		t.smu.Lock()
		if t.synced >= seq {
			t.smu.Unlock()
			return nil
		}
		if t.serr != nil {
			err := t.serr
			t.smu.Unlock()
			return err
		}
		if t.syncing {
			round := t.round
			t.smu.Unlock()
			select {
			case <-round:
				continue
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if err := ctx.Err(); err != nil {
			t.smu.Unlock()
			return err
		}
		t.syncing = true
		t.smu.Unlock()
		if err := t.commit(ctx); err != nil {
			return err
		}
	}
}

// commit is one round, run by the leader. It returns ctx.Err() when ctx
// ended during the commit delay; the round then ends without an fsync and
// another waiter leads the next one.
func (t *Trail) commit(ctx context.Context) error {
	if d := t.cfg.commitDelay; d > 0 {
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-t.closing:
			timer.Stop()
		case <-ctx.Done():
			timer.Stop()
			t.endRound(0, "", 0, nil, false)
			return ctx.Err()
		}
	}
	t.mu.Lock()
	f, target, size := t.f, t.seq, t.off
	name := ""
	if len(t.segs) > 0 {
		name = t.active().name
	}
	retired := t.retired
	t.retired = nil
	t.mu.Unlock()

	var err error
	if f == nil {
		// A round starts only for a record written to an open segment,
		// so the files were closed under it (Close after a failure).
		err = fmt.Errorf("%w: no segment open to fsync", ErrClosed)
	} else if err = f.Sync(); err != nil {
		err = fmt.Errorf("%w: fsync %s: %w", ErrFailed, name, err)
	}
	for _, r := range retired {
		r.Close() // fsynced when it was rolled over from
	}
	t.endRound(target, name, size, err, f != nil)
	return nil
}

// endRound publishes a round's result and wakes its waiters.
func (t *Trail) endRound(target uint64, name string, size int64, err error, synced bool) {
	t.smu.Lock()
	defer t.smu.Unlock()
	if synced {
		t.syncs++
	}
	switch {
	case err != nil:
		if t.serr == nil {
			t.serr = err
		}
	case t.serr == nil && target > t.synced:
		t.synced = target
		t.durableName, t.durableSize = name, size
	}
	t.syncing = false
	close(t.round)
	t.round = make(chan struct{})
}

// failure returns the sticky error, if the trail has failed.
func (t *Trail) failure() error {
	t.smu.Lock()
	defer t.smu.Unlock()
	return t.serr
}

// fail makes err the trail's sticky failure and returns it.
func (t *Trail) fail(err error) error {
	err = fmt.Errorf("%w: %w", ErrFailed, err)
	t.smu.Lock()
	defer t.smu.Unlock()
	if t.serr == nil {
		t.serr = err
	}
	return t.serr
}

// syncedSeq returns the highest durable seq.
func (t *Trail) syncedSeq() uint64 {
	t.smu.Lock()
	defer t.smu.Unlock()
	return t.synced
}
