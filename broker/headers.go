package broker

// Header names. Messages carry CloudEvents attributes in binary mode with the
// "ce_" prefix (the Kafka binding); rabbitbus maps them to "cloudEvents_" on
// the wire, as the AMQP binding does.
const (
	HeaderSpecVersion   = "ce_specversion"   // always "1.0"
	HeaderID            = "ce_id"            // event_id
	HeaderType          = "ce_type"          // event_type
	HeaderSource        = "ce_source"        // the publishing service
	HeaderTime          = "ce_time"          // timestamp, RFC 3339 with milliseconds
	HeaderSubject       = "ce_subject"       // the event key (job id for job events)
	HeaderCorrelationID = "ce_correlationid" // correlation_id (CloudEvents Correlation extension)
	HeaderDataSchema    = "ce_dataschema"    // DataSchemaURI("<schema>/v<version>") for Avro bodies
	HeaderContentType   = "content-type"     // application/avro or application/json
	// HeaderDataContentType is read, never written: a producer may give
	// the content type as the CloudEvents attribute datacontenttype
	// (cloudEvents_datacontenttype on AMQP) instead of content-type.
	HeaderDataContentType = "ce_datacontenttype"
	HeaderTraceParent     = "traceparent" // W3C trace context
	HeaderTraceState      = "tracestate"  // W3C trace context
)

// Dead-letter headers, added to the original headers of a message published
// to "<topic>.dlq".
const (
	HeaderDLQError     = "x-dlq-error"     // the last handler error
	HeaderDLQAttempts  = "x-dlq-attempts"  // handler calls made
	HeaderDLQTime      = "x-dlq-time"      // when it was dead-lettered, RFC 3339
	HeaderDLQTopic     = "x-dlq-topic"     // the original topic
	HeaderDLQGroup     = "x-dlq-group"     // the subscription group that gave up
	HeaderDLQPartition = "x-dlq-partition" // original partition, when the backend has one
	HeaderDLQOffset    = "x-dlq-offset"    // original offset, when the backend has one
	HeaderDLQPermanent = "x-dlq-permanent" // "true" when the error was marked Permanent
	// HeaderDLQBodySize and HeaderDLQBodySHA256 replace the body of a
	// message too large to be dead-lettered whole: its size in bytes and
	// its SHA-256 (hex). The dead letter then has an empty body.
	HeaderDLQBodySize   = "x-dlq-body-size"
	HeaderDLQBodySHA256 = "x-dlq-body-sha256"
)

// SpecVersion is the CloudEvents version of the headers.
const SpecVersion = "1.0"

// CanonicalID returns id in the form IDs are compared and stored in: a
// UUID in its 36-character text form, written in any case, is returned in
// lower case (RFC 9562: UUIDs compare case-insensitively, and Swift or SQL
// Server write them in upper case); any other string is returned as it is.
// Dedupe keys, and whatever else matches messages by ID, go through it.
func CanonicalID(id string) string {
	if len(id) != 36 {
		return id
	}
	upper := false
	for i := 0; i < 36; i++ {
		c := id[i]
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return id
			}
		case '0' <= c && c <= '9', 'a' <= c && c <= 'f':
		case 'A' <= c && c <= 'F':
			upper = true
		default:
			return id
		}
	}
	if !upper {
		return id
	}
	b := []byte(id)
	for i, c := range b {
		if 'A' <= c && c <= 'F' {
			b[i] = c + ('a' - 'A')
		}
	}
	return string(b)
}
