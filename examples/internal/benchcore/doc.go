// Package benchcore is the engine of eventbench (examples/bench): it drives
// a chosen rate of realistic events from N publishers to M consumer-group
// members on one backend (memory, Kafka, RabbitMQ), through the SDK
// (events.Bus, Avro, headers, hooks) or through the raw client alone
// (sarama, amqp091), and accounts for every event.
//
// Every event carries a sequence number in its event ID (RunID.EventID) and
// its publish time in a header (HeaderSent). The Ledger keeps one bit per
// event for "acknowledged", "consumed" and "both", so a run ends with exact
// counts of lost events (acknowledged, never consumed) and duplicates
// (consumed twice) whatever its length, in a few bits per event. The
// Collector adds latency histograms (publish call, publish→consume), and Run
// turns a Driver and a Config into a Result, which renders as a table, JSON
// or CSV. Sweep results become a latency-versus-throughput chart
// (WriteChart).
//
// The package has no flags and prints nothing unless asked: the command in
// examples/bench wires it to the command line.
package benchcore
