package broker

import "context"

// Replayer is implemented by backends that keep a log (memory, Kafka).
// Services rebuild their state from it at start, e.g. the job orchestrator
// resuming unfinished jobs from job-lifecycle.
type Replayer interface {
	// Replay hands every message of topic — from the oldest retained up to
	// the end of each partition at the moment of the call — to h, in order
	// within each partition, then returns nil. It joins no group and commits
	// nothing; messages published during the replay may or may not be
	// included. It stops at the first error h returns (and returns it), or
	// when ctx ends. Delivery.Group is empty.
	Replay(ctx context.Context, topic string, h Handler) error
}
