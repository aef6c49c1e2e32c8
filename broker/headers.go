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
	HeaderTraceParent   = "traceparent"      // W3C trace context
	HeaderTraceState    = "tracestate"       // W3C trace context
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
