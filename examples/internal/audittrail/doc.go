// Package audittrail is the storage engine of the ComplianceAuditor: an
// immutable, tamper-evident trail of every event the platform publishes.
// Each event is appended once (redeliveries are recognised by event ID) to
// an append-only daily segment file, each record carries the SHA-256 hash
// of the record before it, and Append returns only after the record is
// fsynced, so a crash loses nothing that was acknowledged. Segments older
// than the retention (90 days) are removed whole, and an anchor file keeps
// the chain verifiable. Verify and VerifyDir re-read everything and name
// the first broken record; ByJob lists a job's trail in order.
//
// The service on top subscribes to every topic, calls Append for each
// message and acknowledges the message only after Append returned with a
// nil error; it runs Prune daily and serves ByJob over HTTP. The `audit
// verify` command calls VerifyDir.
//
// # On-disk format
//
// This section is the specification an external verifier implements.
//
// A trail is a directory holding:
//
//   - segment-YYYY-MM-DD.jsonl: one segment per UTC date (the date the
//     records were appended, by the trail's clock). Segments are in trail
//     order when sorted by name.
//   - anchor.json (optional): the retention anchor, written by Prune.
//   - LOCK: the writer's lock file, empty. Files named
//     "<segment>.torn-*" are bytes Open cut off a torn tail, kept for
//     inspection. Verification ignores both.
//
// A segment is a sequence of lines, each ending in "\n" (0x0A). Each line
// is one record: a compact JSON object (encoding/json output: no
// insignificant whitespace, so a record never contains a raw newline)
// whose keys come in this order:
//
//	{"seq":12,"prev":"<64 hex>","recorded_at":"2026-11-26T10:15:04.123456789Z",
//	 "event_id":"<uuid>","event_type":"job.completed","topic":"job-lifecycle",
//	 "key":"job-42","job_id":"job-42","correlation_id":"<uuid>","user_id":"u-7",
//	 "event_time":"2026-11-26T10:15:04.1Z","event":{…the event as JSON…},
//	 "hash":"<64 hex>"}
//
// (shown wrapped; on disk it is one line). seq counts records from 1 with
// no gap across segments; prev is the hash of the record before (64 "0"
// characters for seq 1); times are RFC 3339 in UTC with up to nanosecond
// precision; event is the event exactly as the JSON codec encodes it,
// compacted. Hashes are lowercase hexadecimal SHA-256, 64 characters.
//
// The body of a record is its line without the newline and without the
// hash member: the line always ends with the 75 bytes
//
//	,"hash":"<64 hex>"}
//
// and the body is the line with those 75 bytes replaced by the single
// byte "}". The hash of the record is
//
//	hash = lowercase_hex( SHA-256( prev || "\n" || body ) )
//
// where prev is the 64 ASCII characters of the record's prev field and
// "\n" the single byte 0x0A. The hash is computed over the bytes as they
// are on disk; a verifier never re-encodes JSON.
//
// anchor.json holds one JSON object:
//
//	{"segment":"segment-2026-08-27.jsonl","seq":1234,"hash":"<64 hex>","pruned_at":"…"}
//
// segment is the newest segment Prune removed, seq and hash those of the
// last record removed.
//
// # Verification
//
// Start with expected seq = 1 and expected prev = 64 zeros, or, if
// anchor.json exists, seq = anchor.seq + 1 and prev = anchor.hash, and skip
// the segment files whose names sort at or before anchor.segment. Then for
// every line of every segment, in name order then line order:
//
//  1. the line must end with a newline, end with the hash member above,
//     and its body must parse as a JSON object with seq ≥ 1, prev of 64
//     lowercase hex digits and a non-nil event_id ("unparsable");
//  2. the hash computed from prev and the body must equal the stored hash
//     ("hash mismatch");
//  3. seq must equal the expected seq ("seq gap");
//  4. prev must equal the expected prev ("prev mismatch");
//
// then expect seq + 1 and this record's hash. The first line that fails is
// the first broken record.
//
// Exception, the torn tail: a run of lines failing step 1 at the very end
// of the newest segment is what a crash during a write leaves (a cut line,
// zero-filled blocks, a record without its newline). Those records were
// never acknowledged; it is reported (VerifyReport.TornTail) but is not a
// break, and Open cuts it off, saving the bytes to "<segment>.torn-*". A
// crash leaves a prefix of what was written, with blocks that never
// reached the disk read back as zeros; it never puts another byte where a
// newline was written. So if the first line of that run begins with a
// complete record, intact by its own hash, followed by a byte other than
// 0x0A or 0x00 (the newline after a record was changed), it is a break,
// and Open leaves it in place (adding a newline after it if the file ends
// without one, so that new records start on their own line).
//
// This detects any changed byte of a record (the hash changes or the line
// stops parsing), removed, inserted and reordered records, a segment cut
// in the middle, and a removed segment that no anchor covers. A changed
// byte in the last record of the newest segment may show as a torn tail
// instead of a break. No hash chain can detect the removal of the last
// records, nor a forged anchor: compare the head (VerifyReport.LastSeq and
// LastHash) and the anchor hash with values published outside the trail
// (Trail.Last, the log line Prune writes) for that. Trail.Verify, on an
// open trail, also checks that the disk still ends at the head it wrote.
//
// # Durability and concurrency
//
// Append writes the line with one write call under a mutex, then waits
// until an fsync of the segment covers it (group commit: one fsync covers
// every record written before it started). Rolling over to a new day
// fsyncs the old segment before the new one is created, and the directory
// after, so a crash can only tear the end of the newest segment. Open
// fsyncs the newest segment and the directory before it counts the
// records it loaded as durable: a process that crashed (rather than the
// machine) leaves its unsynced writes in the page cache. A failed
// write or fsync puts the trail in a failed state (ErrFailed); Open it
// again to recover.
//
// The directory is locked (flock on LOCK) while a Trail has it open.
package audittrail
