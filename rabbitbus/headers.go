package rabbitbus

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"

	"github.com/cosmic-horizons/events/broker"
)

// Wire names. A broker.Message travels as one AMQP message:
//
//   - exchange: Message.Topic; routing key: the ce_type header (the event
//     type), so bindings filter by event type;
//   - body: Message.Body, untouched;
//   - every "ce_<attr>" header goes into the headers table as
//     "cloudEvents_<attr>" (the CloudEvents AMQP convention); the
//     content-type header becomes the ContentType property; every other
//     header is copied as is (as a long string);
//   - Message.Key goes into the HeaderKey header;
//   - properties: MessageId = ce_id, CorrelationId = ce_correlationid,
//     Type = ce_type, Timestamp = ce_time (AMQP keeps whole seconds; the
//     exact time stays in cloudEvents_time), DeliveryMode persistent.
//
// A consumer maps all of it back, so every header, the key and the body
// arrive exactly as they were published.
const (
	// HeaderKey carries Message.Key.
	HeaderKey = "x-message-key"
	// headerSeq numbers a message on its publishing channel, so that a
	// basic.return (which carries the message's headers, not its delivery
	// tag, and reaches the client apart from the confirms) is matched to
	// exactly the publish it refers to. Stripped by rabbitbus consumers;
	// consumers in other languages see it and should ignore it. The "ch-"
	// prefix marks it as this SDK's (not RabbitMQ's "x-" arguments, not a
	// CloudEvents attribute).
	headerSeq = "ch-rabbitbus-seq"
	// headerResent marks a message published again after the connection
	// was lost before its confirm: the broker may hold an earlier copy.
	// Consumers strip it and report the delivery as Redelivered.
	headerResent = "ch-rabbitbus-resent"
	// legacySeq and legacyResent are the names an older rabbitbus wrote;
	// consumers still strip them (and honour legacyResent) for messages
	// published by an older rabbitbus.
	legacySeq    = "x-rabbitbus-seq"
	legacyResent = "x-rabbitbus-resent"
	// ceWirePrefix replaces broker's "ce_" prefix on the wire.
	ceWirePrefix  = "cloudEvents_"
	ceWirePrefix2 = "cloudEvents:" // the AMQP 1.0 binding's spelling, accepted on input
	ceBrokerPfx   = "ce_"
)

// checkHeaders rejects header names that would not survive the trip: the
// wire's own names, and AMQP's sender-selected distribution headers.
func checkHeaders(m *broker.Message) error {
	for _, hdr := range m.Headers {
		k := hdr.Key
		switch {
		case k == HeaderKey || k == headerSeq || k == headerResent || k == legacySeq || k == legacyResent || k == "CC" || k == "BCC":
			return fmt.Errorf("%w: header %q is reserved by rabbitbus", broker.ErrInvalidMessage, k)
		case strings.HasPrefix(k, ceWirePrefix), strings.HasPrefix(k, ceWirePrefix2):
			return fmt.Errorf("%w: header %q: use the %q prefix, rabbitbus writes %q on the wire", broker.ErrInvalidMessage, k, ceBrokerPfx, ceWirePrefix)
		case k == "":
			return fmt.Errorf("%w: empty header name", broker.ErrInvalidMessage)
		case len(k) > 255:
			return fmt.Errorf("%w: header name %q… is longer than 255 bytes", broker.ErrInvalidMessage, k[:32])
		}
	}
	return nil
}

// toPublishing returns the routing key and the AMQP message of m.
func toPublishing(m *broker.Message) (string, amqp.Publishing) {
	h := make(amqp.Table, len(m.Headers)+2)
	p := amqp.Publishing{DeliveryMode: amqp.Persistent, Body: m.Body, Headers: h}
	for _, hdr := range m.Headers {
		k, v := hdr.Key, hdr.Value
		switch {
		case k == broker.HeaderContentType && v != "":
			p.ContentType = v
		case strings.HasPrefix(k, ceBrokerPfx):
			h[ceWirePrefix+k[len(ceBrokerPfx):]] = v
		default:
			h[k] = v
		}
	}
	if m.Key != "" {
		h[HeaderKey] = m.Key
	}
	p.MessageId = m.Header(broker.HeaderID)
	p.CorrelationId = m.Header(broker.HeaderCorrelationID)
	p.Type = m.Header(broker.HeaderType)
	if ts := m.Header(broker.HeaderTime); ts != "" {
		if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
			p.Timestamp = t
		}
	}
	return m.Header(broker.HeaderType), p
}

// fromDelivery fills m with the message of d, consumed from topic,
// reusing the capacity of m.Headers. Headers come in name order (an AMQP
// table has none). redelivered reports whether the broker or a publisher
// re-send may have delivered it before.
func fromDelivery(m *broker.Message, d *amqp.Delivery, topic string) (redelivered bool) {
	*m = broker.Message{Topic: topic, Body: d.Body, Headers: m.Headers[:0]}
	redelivered = d.Redelivered
	for k, v := range d.Headers {
		switch {
		case k == HeaderKey:
			m.Key = tableString(v)
		case k == headerSeq, k == legacySeq:
		case k == headerResent, k == legacyResent:
			redelivered = true
		case strings.HasPrefix(k, ceWirePrefix):
			m.Headers = append(m.Headers, broker.Header{Key: ceBrokerPfx + k[len(ceWirePrefix):], Value: tableString(v)})
		case strings.HasPrefix(k, ceWirePrefix2):
			m.Headers = append(m.Headers, broker.Header{Key: ceBrokerPfx + k[len(ceWirePrefix2):], Value: tableString(v)})
		default:
			m.Headers = append(m.Headers, broker.Header{Key: k, Value: tableString(v)})
		}
	}
	slices.SortFunc(m.Headers, func(a, b broker.Header) int { return strings.Compare(a.Key, b.Key) })
	if d.ContentType != "" {
		m.SetHeader(broker.HeaderContentType, d.ContentType)
	}
	// Messages from publishers that set only the AMQP properties.
	fill := func(name, v string) {
		if _, ok := m.Headers.Lookup(name); !ok && v != "" {
			m.Headers = append(m.Headers, broker.Header{Key: name, Value: v})
		}
	}
	fill(broker.HeaderID, d.MessageId)
	fill(broker.HeaderType, d.Type)
	fill(broker.HeaderCorrelationID, d.CorrelationId)
	return redelivered
}

// tableString turns an AMQP table value into a header string: strings and
// bytes as they are, numbers in decimal, times in RFC 3339, tables and
// arrays (x-death) as JSON.
func tableString(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	case nil:
		return ""
	case bool:
		return strconv.FormatBool(x)
	case int8, int16, int32, int64, int, uint8, uint16, uint32, uint64:
		return fmt.Sprint(x)
	case float32:
		return strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64)
	case time.Time:
		return x.UTC().Format(time.RFC3339)
	case amqp.Decimal:
		return fmt.Sprintf("%de-%d", x.Value, x.Scale)
	default:
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
}
