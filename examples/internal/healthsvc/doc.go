// Package healthsvc is the SystemHealthService of the reference system. Every
// round (Run: every 5s; Check: one round, for tests and tools) it
//
//   - calls Health on every backend it is given (Kafka, RabbitMQ, memory),
//     each bounded by a timeout, and reads brokers reachable, the connected
//     node, topic and queue checks, and consumer lag per group and
//     partition;
//   - reads, from a SignalSource, each service's handler attempts, failures,
//     dead letters and processing latency over a window (Recorder is the
//     SignalSource fed by the consumption pipeline's hooks; SignalsHandler
//     serves a Recorder over HTTP and Remote reads such endpoints of other
//     processes);
//   - raises and clears alerts: consumer lag above 1,000 messages, an error
//     rate above 1 %, a P99 processing time above 500 ms, a backend
//     unreachable or missing brokers or nodes, a signals endpoint that
//     stops answering, events dropped, a disk filling (Kafka log volumes,
//     RabbitMQ disk alarm), lopsided partition leadership, any other
//     failing check (a topic missing, a queue that cannot be read, a
//     RabbitMQ memory alarm) — docs/operations.md lists them all;
//   - publishes a "notification" event when an alert starts (its severity;
//     category "alert.<kind>") and one when it clears (severity info;
//     category "alert.<kind>.resolved"), and a "system.health" event per
//     backend, per service and for the whole system;
//   - serves GET /healthz (liveness), GET /readyz (readiness: 503 while a
//     backend is unreachable, the body says why), GET /report and GET
//     /history (the latest alert transitions).
//
// # Alerts and hysteresis
//
// An alert is identified by (kind, backend, subject), e.g. (consumer_lag,
// kafka, "billing/job-lifecycle"). It starts once when its condition
// starts and clears once when it ends; in between, rounds only update its
// figures. Two mechanisms keep it from flapping (see Hysteresis): measured
// conditions clear only below 80 % of their threshold, so a value
// oscillating around the threshold starts one alert and no more; and an
// alert clears only after two consecutive good rounds, so a connection
// that drops every other round stays one alert. An alert whose subject is
// no longer reported (a consumer group gone) clears like a recovered one,
// unless its backend is unreachable in that round: an unreachable backend
// says nothing about its groups. Likewise the alerts of the services of a
// signals endpoint that does not answer (SourceReporter, Remote) stay open
// while AlertSourceUnreachable lasts: a hung service is not a recovered
// one.
//
// # Kafka brokers
//
// Kafka drops a dead broker from its metadata, so kafkabus.Backend.Health
// reports a cluster of 3 that lost a broker as 2 of 2 brokers reachable.
// The service remembers how many brokers answered (or is told, through
// Config.ExpectedBrokers) and raises broker_down when fewer do.
//
// # Delivery of alerts
//
// Notifications that cannot be published (the notifications topic's broker
// is down too) are kept in order and published at the next round, up to
// Config.MaxPending; health events are not retried, as the next round
// publishes fresh ones.
package healthsvc
