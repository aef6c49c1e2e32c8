package audittrail

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/google/uuid"
)

// Trail is an open audit trail: an append-only, hash-chained log of events
// in daily segment files under one directory. All methods are safe for
// concurrent use. Only one Trail may have a directory open at a time (the
// directory is locked); VerifyDir reads a directory without opening it.
type Trail struct {
	dir  string
	cfg  config
	log  *slog.Logger
	lock *os.File

	// maint orders Prune (writer) against Verify and ByJob (readers), so
	// that readers never see a segment disappear under them.
	maint sync.RWMutex

	// mu guards the writer state and the index.
	mu      sync.Mutex
	closed  bool
	closing chan struct{} // closed by Close: a leader stops its commit delay
	f       *os.File      // active (newest) segment, opened for append; nil if none
	off     int64         // size of the active segment
	segs    []segment     // retained segments in order; the last one is active
	seq     uint64        // seq of the last record written
	hash    string        // hash of the last record written
	anchor  *Anchor       // current retention anchor, nil if none
	ids     map[uuid.UUID]uint64
	jobs    map[string][]pos
	retired []*os.File // segments rolled over from, closed by the next commit
	stats   Stats

	// smu guards the group-commit state (see commit.go). Lock order: mu
	// before smu.
	smu         sync.Mutex
	synced      uint64        // highest seq covered by a successful fsync
	syncing     bool          // a leader is committing
	round       chan struct{} // closed when the current commit round ends
	serr        error         // sticky failure, wraps ErrFailed or ErrClosed
	syncs       uint64
	durableName string // segment and size covered by the last good fsync
	durableSize int64
}

// segment is what the trail remembers of a retained segment file.
type segment struct {
	day      day
	name     string
	lastSeq  uint64 // 0 while empty
	lastHash string
}

// pos locates a record for ByJob.
type pos struct {
	seq  uint64
	off  int64
	size uint32 // without the newline
	day  day
}

// Stats are counters of an open Trail.
type Stats struct {
	// Records is the number of records in the trail (Len).
	Records int
	// Appended counts records written since Open; Duplicates counts
	// Appends answered (false, nil) because the event was already there.
	Appended, Duplicates uint64
	// Syncs counts fsyncs of the active segment since Open (group commit
	// rounds, and the one Open makes of the segment it loaded);
	// Appended/Syncs is about the average group size.
	Syncs uint64
	// LastSeq is the seq of the last record written; DurableSeq the
	// highest seq covered by an fsync. Every record up to DurableSeq has
	// been or can be acknowledged.
	LastSeq, DurableSeq uint64
}

// Open opens the trail in dir, creating the directory if needed, and locks
// it against other writers (ErrLocked).
//
// Open reads every segment to rebuild the index (event ID → seq, job ID →
// record positions) and the chain head, so appends continue the chain. A
// torn tail — a trailing run of lines in the newest segment that are not
// newline-terminated or do not parse, which is what a crash in the middle
// of a write leaves — is cut off: those bytes were never acknowledged,
// because Append returns only after they were fsynced. They are copied to
// "<segment>.torn-*" beside the segment first, and the repair is logged.
// Nothing else is repaired: unparsable lines elsewhere and chain breaks are
// logged and left for Verify to report, and Open succeeds. Segments covered
// by the anchor (left over by an interrupted Prune) are removed.
func Open(dir string, opts ...Option) (*Trail, error) {
	var cfg config
	for _, o := range opts {
		o.apply(&cfg)
	}
	cfg.setDefaults()
	if err := cfg.validate(); err != nil {
		return nil, fmt.Errorf("audittrail: open %s: %w", dir, err)
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, fmt.Errorf("audittrail: open: %w", err)
	}
	lock, err := lockDir(dir)
	if err != nil {
		return nil, fmt.Errorf("audittrail: open %s: %w", dir, err)
	}
	t := &Trail{
		dir:     dir,
		cfg:     cfg,
		log:     cfg.logger.With("trail", dir),
		lock:    lock,
		closing: make(chan struct{}),
		hash:    GenesisHash,
		ids:     make(map[uuid.UUID]uint64),
		jobs:    make(map[string][]pos),
		round:   make(chan struct{}),
	}
	if err := t.load(context.Background()); err != nil {
		t.closeFiles()
		return nil, err
	}
	t.synced = t.seq // everything on disk after load is durable
	return t, nil
}

// Close waits until every record written is fsynced, then closes the
// files and unlocks the directory. Appends waiting for that fsync return
// normally. Close returns an error wrapping ErrFailed if the trail has
// failed (the files are closed all the same). Calling Close again returns
// nil.
func (t *Trail) Close() error {
	t.mu.Lock()
	if t.closed {
		t.mu.Unlock()
		return nil
	}
	t.closed = true
	close(t.closing)
	last := t.seq
	t.mu.Unlock()

	err := t.waitDurable(context.Background(), last)
	if err == nil {
		err = t.failure()
	}
	t.mu.Lock()
	t.closeFiles()
	t.mu.Unlock()
	return err
}

// closeFiles closes the segment files and releases the directory lock.
func (t *Trail) closeFiles() {
	if t.f != nil {
		t.f.Close()
		t.f = nil
	}
	for _, f := range t.retired {
		f.Close()
	}
	t.retired = nil
	if t.lock != nil {
		t.lock.Close()
		t.lock = nil
	}
}

// Dir returns the directory of the trail.
func (t *Trail) Dir() string { return t.dir }

// Len returns the number of records in the trail that are indexed:
// everything retained (not pruned), including appends whose fsync is still
// in progress, excluding lines that do not parse.
func (t *Trail) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.ids)
}

// Has reports whether the event ID is recorded in the retained trail. It is
// also true for an Append still waiting for its fsync.
func (t *Trail) Has(eventID uuid.UUID) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.ids[eventID]
	return ok
}

// Last returns the head of the chain: the seq and hash of the last record
// written, which the next record links to. For an empty trail they are 0
// and GenesisHash, or the anchor's after everything was pruned. Publishing
// the head elsewhere (a log, a ticket) lets an auditor later detect
// truncation of the tail, which a hash chain alone cannot.
func (t *Trail) Last() (seq uint64, hash string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.seq, t.hash
}

// Stats returns the trail's counters.
func (t *Trail) Stats() Stats {
	t.mu.Lock()
	s := t.stats
	s.Records = len(t.ids)
	s.LastSeq = t.seq
	t.mu.Unlock()
	t.smu.Lock()
	s.Syncs = t.syncs
	s.DurableSeq = t.synced
	t.smu.Unlock()
	return s
}

func (t *Trail) path(name string) string { return filepath.Join(t.dir, name) }
