// Package auditsvc is the ComplianceAuditor of the reference system: it
// consumes every platform topic and appends each event, once, to the
// tamper-evident trail of package audittrail (daily append-only segments,
// a SHA-256 chain, fsync before the acknowledgement, 90-day retention with
// a chain anchor). It serves a job's trail over HTTP (GET /audit?job_id=…),
// verifies the chain on request (GET /audit/verify), and provides what the
// `audit verify` command runs (VerifyCommand).
//
// # Guarantees
//
// The Handler returns nil only once the event's record is fsynced (or was
// already in the trail), so a backend commits or acknowledges a message only
// after its record is durable: a crash loses nothing that was acknowledged.
// A message that was recorded but not acknowledged before a crash is
// delivered again and recognised by its event ID, which the trail indexes
// and rebuilds from disk on open: every event is recorded exactly once.
//
// A message that cannot be decoded (or whose event cannot be recorded) fails
// with a permanent error and goes to the dead letter "<topic>.dlq". A
// storage failure (a write or fsync error) never does: the handler reopens
// the trail (which rebuilds its state from disk and cuts off a torn write)
// and retries with backoff until it succeeds or its context ends, so the
// message is either recorded or delivered again — never dead-lettered
// because of the disk.
// For the same reason the Handler must not run under a
// broker.Subscription.HandlerTimeout: a timeout counts as a failed attempt,
// and the last one would dead-letter the message.
//
// # Dead-letter topics are not audited
//
// Subscribe covers the platform topics and not their ".dlq" topics. A dead
// letter is a copy of a message of a platform topic, with the same event ID,
// and the auditor reads every platform topic in its own consumer group: a
// dead letter of another service's group is therefore already in the trail
// (auditing it would only produce a duplicate), and one of the auditor's own
// group is a message it could not decode, which it could not record from the
// dead-letter topic either (and consuming it there would dead-letter it to
// "<topic>.dlq.dlq"). Dead letters are operations data, watched through the
// dead-letter topics and the health service.
//
// # Shutting down
//
// Stop the consumers (cancel their context or Close them) before calling
// Service.Close. A handler that finds the service closed neither
// acknowledges nor dead-letters its message: it waits until its context
// ends (the backend's drain bound) and the message is delivered again later.
package auditsvc
