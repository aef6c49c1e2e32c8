// Package testkit is what a downstream project imports in its own tests of
// code built on this module: an [EventBuilder] that makes valid,
// deterministic events (one job's whole lifecycle in one call, or a [Draft]
// of one event of any type, your own included), a [MockPublisher] that
// stands in for a backend and captures what the code under test
// published, a [MessageCapture] handler that waits with a deadline for what
// a subscription delivers and checks per-key order and duplicates, and a
// [LatencyMeasurer] that reports P50/P95/P99 from many goroutines in bounded
// memory.
//
// Everything here is safe for concurrent use unless its documentation says
// otherwise, holds no package-level state, and never sleeps to wait: waits
// wake on the event they wait for and end with their context, returning an
// error that says what is missing. The sub-packages kafkatest and rabbittest
// provide real brokers for integration tests.
package testkit
