// Package brokertest is the conformance suite of the broker contract. Every
// backend of this module runs it, and a third-party backend can too:
//
//	func TestConformance(t *testing.T) {
//		brokertest.Run(t, func(t *testing.T) brokertest.Backend {
//			b := mybackend.New(…)
//			t.Cleanup(func() { b.Close() })
//			return brokertest.Backend{Publisher: b, Subscriber: b}
//		}, brokertest.Features{Persistent: true, ConsumerGroups: true, MaxMessageBytes: 1 << 20})
//	}
//
// Each test gets a fresh Backend from the factory and topics named uniquely
// for it, so tests never see each other's messages. Features say what the
// backend supports; tests of features it lacks are skipped with a message.
// Waits are bounded by Features.Timeout; nothing in the suite sleeps to
// synchronise.
//
// What the suite proves, per test (see Run for the list): round trip of
// body and headers; no loss and no duplicates with 50 concurrent publishers;
// topic isolation; every group gets everything; members of a group split the
// work; per-key order with concurrency 8 and random handler delays; retries
// then success; retries exhausted → dead letter with error headers while
// consumption continues; a handler panic is survived; Close and ctx
// cancellation drain in-flight handlers and commit; resubscribing resumes
// without loss; OnFailureStop stops without acknowledging; publish after
// Close fails with ErrClosed; oversized messages fail with
// ErrMessageTooLarge; a late subscriber sees old messages; ephemeral
// subscribers see only new ones; event-type filters; invalid subscriptions;
// typed events through events.Bus and events.Router; a poison message just under the
// size limit is dead-lettered whole (its error header bounded) without
// wedging its key or Close; an oversized message from a foreign producer is
// dead-lettered without its body; an unknown event type is dead-lettered by
// a typed handler while a known other type is skipped; a stuck handler shows
// in Health as a message in flight whose age grows; a member joins a group
// within DrainTimeout plus the runtime's grace while another member's
// handler is deaf to its ctx, at every Concurrency; a handler deaf to its
// ctx is abandoned on Close and its message redelivered; messages without a
// key are spread over the workers.
package brokertest
