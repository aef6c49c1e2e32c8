package benchcore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/schemas"
)

// The peer (ModeWatermill) does the work the SDK arm does, with watermill
// in place of the SDK: every event is built with the eventmodels
// constructors, validated and encoded with the SDK's Avro codec (the same
// body bytes as the Bus writes), and carries the nine CloudEvents headers
// the Bus writes as watermill metadata (plus HeaderSent); it is published
// one event per Publish call, and consumed through a watermill Router whose
// handler reads the type and schema version from the metadata and decodes
// (and so validates) the body before accounting for the event by the ID it
// decoded. What watermill adds on top (its message UUID header, the
// Router's goroutine per message) is its own way of working.

// peerCodec encodes and decodes the peer's events.
type peerCodec struct {
	reg   *eventmodels.Registry
	codec *schemas.AvroCodec
}

func newPeerCodec() (*peerCodec, error) {
	reg := eventmodels.NewRegistry()
	codec, err := schemas.NewAvroCodec(reg)
	if err != nil {
		return nil, err
	}
	return &peerCodec{reg: reg, codec: codec}, nil
}

// ceTime is the layout of ce_time, as the Bus writes it.
const ceTime = "2006-01-02T15:04:05.000Z07:00"

// message returns event n of w as a watermill message: Avro body, the nine
// CloudEvents headers and HeaderSent as metadata, the event ID as the
// message UUID. It also returns the event's key (the job ID).
func (p *peerCodec) message(w *Workload, n uint64, sent string) (*message.Message, string, error) {
	e := w.Event(n)
	info, err := p.reg.InfoOf(e)
	if err != nil {
		return nil, "", err
	}
	if err := e.Validate(); err != nil {
		return nil, "", err
	}
	body, err := p.codec.EncodeInfo(info, e)
	if err != nil {
		return nil, "", err
	}
	env := e.Envelope()
	key := e.Key()
	id := env.EventID.String()
	m := message.NewMessage(id, body)
	m.Metadata = message.Metadata{
		broker.HeaderSpecVersion:   broker.SpecVersion,
		broker.HeaderID:            id,
		broker.HeaderType:          env.EventType,
		broker.HeaderSource:        "eventbench",
		broker.HeaderTime:          env.Timestamp.UTC().Format(ceTime),
		broker.HeaderCorrelationID: env.CorrelationID.String(),
		broker.HeaderContentType:   p.codec.ContentType(),
		broker.HeaderSubject:       key,
		broker.HeaderDataSchema:    events.DataSchemaURI(p.codec.DataSchemaOf(info)),
		HeaderSent:                 sent,
	}
	return m, key, nil
}

// brokerMessage returns event n of w as the raw clients send it: built,
// validated and Avro-encoded per event like the SDK and the peer, with the
// Bus's nine CloudEvents headers and HeaderSent, on n's topic.
func (p *peerCodec) brokerMessage(w *Workload, n uint64, sent string) (*broker.Message, error) {
	wm, key, err := p.message(w, n, sent)
	if err != nil {
		return nil, err
	}
	h := make(broker.Headers, 0, len(wm.Metadata))
	for _, k := range []string{broker.HeaderSpecVersion, broker.HeaderID, broker.HeaderType, broker.HeaderSource, broker.HeaderTime,
		broker.HeaderCorrelationID, broker.HeaderContentType, broker.HeaderSubject, broker.HeaderDataSchema, HeaderSent} {
		h = append(h, broker.Header{Key: k, Value: wm.Metadata.Get(k)})
	}
	return &broker.Message{Topic: w.tmpl[w.Kind(n)].Topic, Key: key, Headers: h, Body: wm.Payload}, nil
}

// decodeRaw decodes a body as the raw consumers do: the event type and the
// schema version from the headers, the Avro codec for the rest.
func (p *peerCodec) decodeRaw(body []byte, eventType, dataSchema string) (eventmodels.Event, error) {
	meta := eventmodels.Meta{EventType: eventType}
	if meta.EventType == "" {
		return nil, fmt.Errorf("%w: no %s", errNotAnEvent, broker.HeaderType)
	}
	if dataSchema != "" {
		_, v, ok := schemas.ParseDataSchema(strings.TrimPrefix(dataSchema, events.DataSchemaPrefix))
		if !ok {
			return nil, fmt.Errorf("%w: %s %q", errNotAnEvent, broker.HeaderDataSchema, dataSchema)
		}
		meta.SchemaVersion = v
	}
	return p.codec.Decode(body, meta)
}

// consumeRaw decodes a raw delivery and accounts for its event by the
// decoded ID; one that does not decode is foreign.
func (p *peerCodec) consumeRaw(c *Collector, body []byte, eventType, dataSchema, sent string) {
	e, err := p.decodeRaw(body, eventType, dataSchema)
	if err != nil {
		c.Ledger().Foreign()
		return
	}
	c.ConsumedID(e.Envelope().EventID, sent)
}

// errNotAnEvent is the decode error of a message without the headers an
// event needs.
var errNotAnEvent = errors.New("benchcore: not an event")

// decode returns the event m carries.
func (p *peerCodec) decode(m *message.Message) (eventmodels.Event, error) {
	return p.decodeRaw(m.Payload, m.Metadata.Get(broker.HeaderType), m.Metadata.Get(broker.HeaderDataSchema))
}

// handler is the peer's consumer: decode, account for the event by its
// decoded ID, ack (a nil error). A message that does not decode is counted
// as foreign and acked, as a poison message would be dropped.
func (p *peerCodec) handler(c *Collector) message.NoPublishHandlerFunc {
	return func(m *message.Message) error {
		e, err := p.decode(m)
		if err != nil {
			c.Ledger().Foreign()
			return nil
		}
		c.ConsumedID(e.Envelope().EventID, m.Metadata.Get(HeaderSent))
		return nil
	}
}

// peerRouter runs a watermill Router with no middleware whose handlers
// (one per consumer-group member) account for every event in c.
type peerRouter struct {
	router *message.Router
	done   chan error
}

// startRouter adds members handlers reading topic from sub and runs the
// router until close; it returns once every handler has subscribed.
func startRouter(ctx context.Context, p *peerCodec, c *Collector, sub message.Subscriber, topic string, members int) (*peerRouter, error) {
	r, err := message.NewRouter(message.RouterConfig{}, watermill.NopLogger{})
	if err != nil {
		return nil, err
	}
	for i := range members {
		r.AddConsumerHandler(fmt.Sprintf("eventbench-%d", i), topic, sub, p.handler(c))
	}
	pr := &peerRouter{router: r, done: make(chan error, 1)}
	go func() { pr.done <- r.Run(context.Background()) }()
	select {
	case <-r.Running():
		return pr, nil
	case err := <-pr.done:
		if err == nil {
			err = errors.New("watermill router stopped before running")
		}
		return nil, err
	case <-ctx.Done():
		_ = r.Close()
		<-pr.done
		return nil, ctx.Err()
	}
}

// close stops the router: the handlers finish the messages they hold.
func (pr *peerRouter) close() error {
	if pr == nil {
		return nil
	}
	err := pr.router.Close()
	return errors.Join(err, <-pr.done)
}

// peerPublish publishes events first … first+n-1, one Publish call each
// (all of them: a batch would be one call per event too), and returns a
// *broker.PublishError naming those that failed.
func peerPublish(p *peerCodec, w *Workload, first uint64, n int, sent string, publish func(*message.Message, string) error) error {
	pe := &broker.PublishError{}
	for i := range n {
		m, key, err := p.message(w, first+uint64(i), sent)
		if err == nil {
			err = publish(m, key)
		}
		if err != nil {
			pe.Failed = append(pe.Failed, broker.FailedMessage{Index: i, Err: err})
		}
	}
	if len(pe.Failed) > 0 {
		return pe
	}
	return nil
}

// newPeerDriver returns the watermill driver of o's backend.
func newPeerDriver(o Options, sdk *sdkParts) (Driver, error) {
	p, err := newPeerCodec()
	if err != nil {
		return nil, err
	}
	switch o.Backend {
	case BackendMemory:
		return &peerMemoryDriver{o: o, sdk: sdk, p: p}, nil
	case BackendKafka:
		return &peerKafkaDriver{o: o, sdk: sdk, p: p}, nil
	default:
		return &peerRabbitDriver{o: o, sdk: sdk, p: p}, nil
	}
}
