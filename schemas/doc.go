// Package schemas holds the Avro schemas of the platform and the Avro codec.
//
// There is one schema per durable topic: job-lifecycle, job-metrics,
// notifications, audit-trail and system-health. The .avsc files are embedded
// in the binary and parsed once. job-lifecycle.avsc is a union of the six
// lifecycle records, so an Avro body on that topic starts with the union
// branch index; the other files are single records. A consumer in any
// language decodes a message with the .avsc file named by the ce_dataschema
// header ("job-metrics/v2") alone.
//
// Every released version stays in history/ as <name>.v<N>.avsc; the files at
// the top are the current versions. Tests check that each current schema is
// backward and forward compatible with the version before it, and the codec
// decodes bodies written with any released version.
package schemas
