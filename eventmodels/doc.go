// Package eventmodels defines the typed events of the Cosmic Horizons platform:
// the common envelope ([Base]), one Go type per event, validation, the job
// status state machine, the [Registry] that maps an event type to its Go type,
// topic and schema, and the JSON codec.
//
// Every event is valid by construction when built with its constructor
// (NewJobSubmitted, NewJobMetrics, …) and is checked again on decode, so a
// consumer never sees an event that breaks the rules in this package.
//
// Validate refuses what the wire cannot carry exactly: integers beyond the
// Avro int (MaxWireInt) or beyond MaxWireLong, NaN and ±Inf, timestamps
// outside the years 0000–9999, strings that are not valid UTF-8. It also
// refuses control characters in strings instead of escaping them where
// they are written, because identifiers become Kafka keys, AMQP headers,
// log fields and audit records, where a newline or an ANSI escape in a
// user_id would forge a line or act on a terminal. Identifiers, names and
// keys (user_id, job_id, project_id, queue, node, actor, resource.id, label
// keys, …) may hold no control character (C0 including newline and tab,
// DEL, C1), no format character (bidirectional overrides, zero-width
// characters) and no line or paragraph separator. Free text (message,
// error_message, reason, title, label values) may hold newlines and tabs
// but no other control character; CleanText escapes the rest for a
// producer that relays text it does not control. A decoder validates what
// it decoded, so an event that breaks these rules on the wire fails as a
// *DecodeError and a consumer dead-letters it.
//
// Events are plain structs. The wire form in JSON uses the snake_case names of
// the platform catalogue (event_id, event_type, timestamp, …); the Avro form
// (package schemas) uses the same names, so both encodings carry identical
// values.
package eventmodels
