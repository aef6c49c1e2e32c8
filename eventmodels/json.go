package eventmodels

import (
	"encoding/json"
	"fmt"
)

// JSONCodec encodes events as JSON objects with the envelope and payload
// fields side by side, and decodes by the event_type discriminator into the
// registered Go type. Unknown fields are ignored, so a consumer keeps working
// when a producer adds a field.
type JSONCodec struct {
	reg     *Registry
	maxSize int
}

// NewJSONCodec returns a JSON codec over reg. maxSize bounds decoded bodies;
// 0 means DefaultMaxEventSize.
func NewJSONCodec(reg *Registry, maxSize int) *JSONCodec {
	if maxSize <= 0 {
		maxSize = DefaultMaxEventSize
	}
	return &JSONCodec{reg: reg, maxSize: maxSize}
}

// ContentType returns "application/json".
func (c *JSONCodec) ContentType() string { return ContentTypeJSON }

// DataSchema returns "": JSON bodies are self-describing.
func (c *JSONCodec) DataSchema(string) string { return "" }

// Encode returns the JSON form of e. e's type must be registered.
func (c *JSONCodec) Encode(e Event) ([]byte, error) {
	if _, err := c.reg.InfoOf(e); err != nil {
		return nil, err
	}
	return json.Marshal(e)
}

// EncodeInfo implements InfoCodec.
func (c *JSONCodec) EncodeInfo(_ TypeInfo, e Event) ([]byte, error) { return json.Marshal(e) }

// DataSchemaOf implements InfoCodec: "".
func (c *JSONCodec) DataSchemaOf(TypeInfo) string { return "" }

// DecodeInfo implements InfoCodec. The body's event_type must be
// info.EventType.
func (c *JSONCodec) DecodeInfo(info TypeInfo, data []byte, _ int) (Event, error) {
	return c.decode(data, info.EventType, &info)
}

type discriminator struct {
	EventType *string `json:"event_type"`
}

// Decode parses data, checks it against meta.EventType when given, and
// validates the result.
func (c *JSONCodec) Decode(data []byte, meta Meta) (Event, error) {
	return c.decode(data, meta.EventType, nil)
}

// decode is Decode, with the registration of the type when known.
func (c *JSONCodec) decode(data []byte, wantType string, info *TypeInfo) (Event, error) {
	meta := Meta{EventType: wantType}
	fail := func(typ string, err error) (Event, error) {
		return nil, DecodeFailure(ContentTypeJSON, typ, err)
	}
	if len(data) > c.maxSize {
		return fail(meta.EventType, TooLarge(len(data), c.maxSize))
	}
	var d discriminator
	if err := json.Unmarshal(data, &d); err != nil {
		return fail(meta.EventType, Malformed(err))
	}
	if d.EventType == nil {
		return fail(meta.EventType, Malformed(fmt.Errorf("no event_type field")))
	}
	typ := *d.EventType
	if meta.EventType != "" && meta.EventType != typ {
		return fail(meta.EventType, Malformed(fmt.Errorf("header type %q, body type %q", meta.EventType, typ)))
	}
	var e Event
	if info != nil {
		e = info.New()
	} else {
		var err error
		if e, err = c.reg.New(typ); err != nil {
			return fail(typ, err)
		}
	}
	if err := json.Unmarshal(data, e); err != nil {
		return fail(typ, Malformed(err))
	}
	b := e.Envelope()
	b.Timestamp = NormalizeTime(b.Timestamp)
	if err := e.Validate(); err != nil {
		return fail(typ, err)
	}
	return e, nil
}
