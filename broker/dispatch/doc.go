// Package dispatch is the consumer runtime every backend of this module
// runs on, and that a third-party backend can run on too: it turns the
// messages a backend fetches into handler calls with the guarantees of the
// broker contract, so that memory, Kafka and RabbitMQ behave alike.
//
// A backend supplies only what is its own: a stream of fetched messages
// with their positions (Partition.Deliver), the acknowledgement or commit
// of a position (PartitionConfig.Commit or PartitionConfig.Ack), and what
// it knows about redelivery (broker.Delivery.Redelivered). The runtime owns
// the rest:
//
//   - the handler goroutines (Subscription.Concurrency workers), with
//     messages sharded by key so one key is never handled concurrently and
//     keeps its order; messages without a key are spread round-robin;
//   - the in-flight bound (Subscription.MaxInFlight messages handed out and
//     not finished, over all partitions of the subscription);
//   - the handler pipeline (broker.Pipeline: filter, failure policy,
//     retries in place on the worker, timeout, recovery);
//   - the acknowledgement watermark: a partition's committed position only
//     moves over the contiguous prefix of finished messages, so it never
//     passes an unfinished one;
//   - drain then cancel, with one grace rule: a partition that closes
//     (revoked, or the subscription stopping) hands out nothing more; its
//     handlers in flight get the drain timeout to finish, then their ctx is
//     cancelled; handlers that ignore their ctx get Config.Grace more, then
//     they are abandoned (their messages left for redelivery, their worker
//     replaced so the other keys go on);
//   - Close, Done and Err (a Runtime is a broker.Consumer), the stop on a
//     handler failure under broker.OnFailureStop, and the messages in
//     flight that Health reports.
//
// # Using it from a backend
//
//	rt, err := dispatch.New(ctx, dispatch.Config{Subscription: sub, Handler: h, Pipeline: broker.Pipeline{DeadLetters: dl}})
//	// for each partition (or queue, or consume session) the backend reads:
//	p := rt.Open(dispatch.PartitionConfig{ID: id, Commit: commit})
//	for batch := range fetched { // in position order
//		if n := p.Deliver(batch); n < len(batch) { break } // closing
//	}
//	p.Close(drain) // drains, commits the finished prefix
//	// when rt.Stopping() is closed: stop fetching, close every partition, then
//	rt.Finish(err)
//
// Close on the Runtime asks the backend to stop (Stopping) and waits for
// Finish. The bound of a Close is the drain timeout plus Config.Grace plus
// what the backend needs to let go of its connections.
package dispatch
