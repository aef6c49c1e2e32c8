package audittrail

import (
	"fmt"
	"path/filepath"
)

// Kill simulates the process dying: no Append is acknowledged from now on,
// the files are closed without an fsync and the lock is released. It
// returns the active segment's path and the size of it the last
// successful fsync covered: what a real crash is guaranteed to keep.
func (t *Trail) Kill() (segment string, durable int64) {
	t.smu.Lock()
	if t.serr == nil {
		t.serr = fmt.Errorf("%w: killed", ErrClosed)
	}
	name, size := t.durableName, t.durableSize
	t.smu.Unlock()
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.closed {
		t.closed = true
		close(t.closing)
	}
	t.closeFiles()
	if name == "" {
		return "", 0
	}
	return filepath.Join(t.dir, name), size
}

// BreakSegment closes the active segment file under the trail, so that
// the next write fails as a full or broken disk would make it.
func (t *Trail) BreakSegment() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.f.Close()
}
