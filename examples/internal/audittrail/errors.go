package audittrail

import "errors"

// Errors returned by a Trail. Match them with errors.Is.
var (
	// ErrClosed is returned by every method of a Trail after Close, and by
	// an Append that was waiting when the trail was shut down without its
	// record becoming durable.
	ErrClosed = errors.New("audittrail: trail closed")

	// ErrFailed is returned once a write or an fsync has failed. After an
	// fsync error the kernel may have dropped the dirty pages, so nothing
	// written since the last good fsync can be trusted: the trail refuses
	// further appends, and Append calls waiting for that fsync return an
	// error wrapping ErrFailed (their records are not acknowledged). Close
	// the trail and Open it again, which rebuilds the state from disk.
	ErrFailed = errors.New("audittrail: trail failed")

	// ErrInvalidEntry is returned by Append for an Entry that cannot be
	// recorded: nil event ID, empty event type, an event body that is not
	// a JSON object or is larger than MaxEventSize.
	ErrInvalidEntry = errors.New("audittrail: invalid entry")

	// ErrCorrupt is returned by ByJob when a record read back from disk does
	// not parse or does not match its own hash. Run Verify for the details.
	ErrCorrupt = errors.New("audittrail: corrupt record")

	// ErrLocked is returned by Open when another Trail, in this process or
	// another one, holds the directory open for writing.
	ErrLocked = errors.New("audittrail: directory locked by another writer")
)
