package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	events "github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
)

// record is one message read from a dead-letter topic or queue, or tailed.
type record struct {
	source    string // the topic or queue it was read from
	partition int32  // Kafka partition; -1 on RabbitMQ
	offset    int64  // Kafka offset; on RabbitMQ its place in this read, from 0
	msg       *broker.Message
}

// position is "partition/offset" on Kafka and "#n" on RabbitMQ.
func (r *record) position() string {
	if r.partition < 0 {
		return "#" + strconv.FormatInt(r.offset, 10)
	}
	return fmt.Sprintf("%d/%d", r.partition, r.offset)
}

// backend is what a broker offers evctl.
type backend interface {
	// deadLetterSources returns the dead-letter topics or queues o
	// selects that exist.
	deadLetterSources(ctx context.Context, o *options) ([]string, error)
	// scan calls fn with every message src holds when scan starts (at
	// most limit when limit > 0), in order, and leaves them there.
	scan(ctx context.Context, src string, limit int, fn func(*record) error) error
	// redrive puts the messages of src that p selects back where they
	// failed; see redrivePlan.
	redrive(ctx context.Context, src string, p *redrivePlan) (*redriveResult, error)
	// tail follows topic as no consumer group until ctx ends or fn
	// returns errStop; ready is called once following has begun.
	tail(ctx context.Context, topic string, fromBeginning bool, ready func(desc string), fn func(*record) error) error
	// topics ensures the platform topics (when o.ensure) and reports
	// drift and lag.
	topics(ctx context.Context, o *options) (*topicsReport, error)
	close() error
}

// errStop ends a scan or tail early without error.
var errStop = fmt.Errorf("stop")

// decoder turns message bodies into JSON through the built-in registry and
// codecs (Avro and JSON).
type decoder struct{ bus *events.Bus }

func newDecoder() (*decoder, error) {
	bus, err := events.NewBus(nil)
	if err != nil {
		return nil, err
	}
	return &decoder{bus: bus}, nil
}

// messageView is how a message is printed, in JSON or as a block.
type messageView struct {
	Source      string          `json:"source"`
	Position    string          `json:"position"`
	Partition   *int32          `json:"partition,omitempty"`
	Offset      *int64          `json:"offset,omitempty"`
	Key         string          `json:"key,omitempty"`
	Type        string          `json:"type,omitempty"`
	ID          string          `json:"id,omitempty"`
	ContentType string          `json:"content_type,omitempty"`
	DeadLetter  *deadLetterView `json:"dead_letter,omitempty"`
	// RedrivenTo is where dlq redrive put the message back.
	RedrivenTo string            `json:"redriven_to,omitempty"`
	Headers    map[string]string `json:"headers"`
	// Event is the decoded event; Body a JSON body evctl could not decode
	// as an event; BodyBase64 any other body, raw.
	Event       json.RawMessage `json:"event,omitempty"`
	Body        json.RawMessage `json:"body,omitempty"`
	BodyBase64  string          `json:"body_base64,omitempty"`
	DecodeError string          `json:"decode_error,omitempty"`
}

// deadLetterView holds the x-dlq-* headers, typed.
type deadLetterView struct {
	Error        string `json:"error,omitempty"`
	Attempts     int    `json:"attempts,omitempty"`
	Time         string `json:"time,omitempty"`
	Topic        string `json:"topic,omitempty"`
	Group        string `json:"group,omitempty"`
	Partition    *int64 `json:"partition,omitempty"`
	Offset       *int64 `json:"offset,omitempty"`
	Permanent    bool   `json:"permanent,omitempty"`
	BodyDropped  bool   `json:"body_dropped,omitempty"`
	RedriveCount int    `json:"redrive_count,omitempty"`
	RedrivenAt   string `json:"redriven_at,omitempty"`
}

func (d *decoder) view(r *record) *messageView {
	m := r.msg
	v := &messageView{
		Source: r.source, Position: r.position(), Key: m.Key,
		Type: m.Header(broker.HeaderType), ID: m.Header(broker.HeaderID),
		ContentType: m.Header(broker.HeaderContentType), Headers: make(map[string]string, len(m.Headers)),
	}
	if r.partition >= 0 {
		p, o := r.partition, r.offset
		v.Partition, v.Offset = &p, &o
	}
	for _, h := range m.Headers {
		v.Headers[h.Key] = h.Value
	}
	v.DeadLetter = deadLetterOf(m)
	if len(m.Body) == 0 {
		return v
	}
	e, err := d.bus.Decode(m)
	if err == nil {
		if b, jerr := json.Marshal(e); jerr == nil {
			v.Event = b
			return v
		} else {
			err = jerr
		}
	}
	v.DecodeError = err.Error()
	if json.Valid(m.Body) {
		v.Body = json.RawMessage(m.Body)
	} else {
		v.BodyBase64 = base64.StdEncoding.EncodeToString(m.Body)
	}
	return v
}

// deadLetterOf returns the x-dlq-* headers of m, or nil if it has none.
func deadLetterOf(m *broker.Message) *deadLetterView {
	var d deadLetterView
	seen := false
	num := func(s string) *int64 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return nil
		}
		return &n
	}
	for _, h := range m.Headers {
		if !strings.HasPrefix(h.Key, "x-dlq-") {
			continue
		}
		seen = true
		switch h.Key {
		case broker.HeaderDLQError:
			d.Error = h.Value
		case broker.HeaderDLQAttempts:
			d.Attempts, _ = strconv.Atoi(h.Value)
		case broker.HeaderDLQTime:
			d.Time = h.Value
		case broker.HeaderDLQTopic:
			d.Topic = h.Value
		case broker.HeaderDLQGroup:
			d.Group = h.Value
		case broker.HeaderDLQPartition:
			d.Partition = num(h.Value)
		case broker.HeaderDLQOffset:
			d.Offset = num(h.Value)
		case broker.HeaderDLQPermanent:
			d.Permanent = h.Value == "true"
		case broker.HeaderDLQBodySize:
			d.BodyDropped = true
		case headerRedriveCount:
			d.RedriveCount, _ = strconv.Atoi(h.Value)
		case headerRedrivenAt:
			d.RedrivenAt = h.Value
		}
	}
	if !seen {
		return nil
	}
	return &d
}

// Headers evctl adds to a message it redrives.
const (
	// headerRedrivenAt is when the message was last put back (RFC 3339).
	headerRedrivenAt = "x-dlq-redriven-at"
	// headerRedriveCount counts the times it was put back.
	headerRedriveCount = "x-dlq-redrive-count"
)

// redriven returns the copy of dead letter m that goes back to topic: same
// key, body and headers, plus the redrive headers. Headers RabbitMQ manages
// itself (x-death and friends, x-delivery-count) are dropped.
func redriven(m *broker.Message, topic string, now time.Time) *broker.Message {
	c := m.Clone()
	c.Topic = topic
	c.Delivery = broker.Delivery{}
	c.Headers = c.Headers[:0:0]
	for _, h := range m.Headers {
		switch {
		case h.Key == "x-death", h.Key == "x-delivery-count",
			strings.HasPrefix(h.Key, "x-first-death-"), strings.HasPrefix(h.Key, "x-last-death-"):
			continue
		}
		c.Headers = append(c.Headers, h)
	}
	n, _ := strconv.Atoi(m.Header(headerRedriveCount))
	c.SetHeader(headerRedriveCount, strconv.Itoa(n+1))
	c.SetHeader(headerRedrivenAt, now.UTC().Format(time.RFC3339Nano))
	return c
}

// originalTopic is the topic a dead letter came from: x-dlq-topic, else
// the dead-letter topic's name without ".dlq".
func originalTopic(m *broker.Message, dlq string) string {
	if t := m.Header(broker.HeaderDLQTopic); t != "" {
		return t
	}
	return strings.TrimSuffix(dlq, broker.DeadLetterSuffix)
}

// bodyDropped reports a dead letter whose body was not kept (too large):
// it cannot be redriven.
func bodyDropped(m *broker.Message) bool { return m.Header(broker.HeaderDLQBodySize) != "" }
