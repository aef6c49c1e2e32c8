// Package eventmodels defines the typed events of the Cosmic Horizons platform:
// the common envelope ([Base]), one Go type per event, validation, the job
// status state machine, the [Registry] that maps an event type to its Go type,
// topic and schema, and the JSON codec.
//
// Every event is valid by construction when built with its constructor
// (NewJobSubmitted, NewJobMetrics, …) and is checked again on decode, so a
// consumer never sees an event that breaks the rules in this package.
//
// Events are plain structs. The wire form in JSON uses the snake_case names of
// the platform catalogue (event_id, event_type, timestamp, …); the Avro form
// (package schemas) uses the same names, so both encodings carry identical
// values.
package eventmodels
