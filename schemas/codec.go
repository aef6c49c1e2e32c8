package schemas

import (
	"errors"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/hamba/avro/v2"
)

// ErrUnknownSchemaVersion is returned by Decode for a body written with a
// schema version the catalog does not hold (a producer newer than this
// consumer): upgrade the consumer to read it.
var ErrUnknownSchemaVersion = errors.New("schemas: unknown schema version")

// ErrOutOfRange is returned by Encode for a value its Avro type cannot
// carry: an integer beyond 32 bits in a field the schema declares int.
// hamba/avro would write such a value truncated to its low 32 bits, so
// the codec checks every such field before writing.
var ErrOutOfRange = errors.New("schemas: value out of range of its Avro type")

// AvroCodec encodes events as Avro binary with the schemas of a Catalog. It
// uses its own frozen avro.Config, so nothing is registered globally. It is
// safe for concurrent use.
type AvroCodec struct {
	reg     *eventmodels.Registry
	cat     *Catalog
	api     avro.API
	maxSize int

	mu    sync.Mutex                        // serialises plan building
	plans atomic.Pointer[map[planKey]*plan] // copy-on-write: lookups take no lock

	writers sync.Pool
	readers sync.Pool
}

type planKey struct {
	eventType string
	version   int // writer version; 0 means current
}

// plan is how one event type is written or read with one schema version.
type plan struct {
	schema     *Schema
	index      int         // union branch, -1 for a plain record
	payload    avro.Schema // the record without its envelope fields
	dataSchema string
	labels     [][]int    // field index paths of the Go type's Labels fields
	ints       []intCheck // values written into Avro int fields (current version only)
}

// CodecOption configures an AvroCodec.
type CodecOption func(*AvroCodec)

// WithCatalog makes the codec use cat instead of the built-in catalog, e.g.
// one extended with downstream schemas by Catalog.With.
func WithCatalog(cat *Catalog) CodecOption { return func(c *AvroCodec) { c.cat = cat } }

// WithMaxEventSize bounds the bodies Decode accepts (default
// eventmodels.DefaultMaxEventSize). Larger bodies fail with
// eventmodels.ErrTooLarge before any parsing.
func WithMaxEventSize(n int) CodecOption { return func(c *AvroCodec) { c.maxSize = n } }

// NewAvroCodec returns an Avro codec for the types in reg. It checks that
// every registered type with a schema finds its record in the catalog.
func NewAvroCodec(reg *eventmodels.Registry, opts ...CodecOption) (*AvroCodec, error) {
	c := &AvroCodec{reg: reg, maxSize: eventmodels.DefaultMaxEventSize}
	c.plans.Store(&map[planKey]*plan{})
	for _, o := range opts {
		o(c)
	}
	if c.maxSize <= 0 {
		return nil, fmt.Errorf("schemas: max event size must be positive, got %d", c.maxSize)
	}
	if c.cat == nil {
		cat, err := Builtin()
		if err != nil {
			return nil, err
		}
		c.cat = cat
	}
	c.api = avro.Config{
		TagKey:            "avro",
		MaxByteSliceSize:  c.maxSize,
		MaxSliceAllocSize: c.maxSize,
	}.Freeze()
	c.writers.New = func() any { return avro.NewWriter(nil, 512, avro.WithWriterConfig(c.api)) }
	c.readers.New = func() any { return avro.NewReader(nil, 0, avro.WithReaderConfig(c.api)) }
	var errs []error
	for _, info := range reg.Types() {
		if !info.HasAvro() {
			continue
		}
		if _, err := c.plan(info, 0); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return c, nil
}

// ContentType returns "application/avro".
func (c *AvroCodec) ContentType() string { return eventmodels.ContentTypeAvro }

// DataSchema returns "<schema>/v<current version>" for eventType, or "" if
// the type is unknown or has no Avro form.
func (c *AvroCodec) DataSchema(eventType string) string {
	info, ok := c.reg.Lookup(eventType)
	if !ok {
		return ""
	}
	return c.DataSchemaOf(info)
}

// DataSchemaOf implements eventmodels.InfoCodec.
func (c *AvroCodec) DataSchemaOf(info eventmodels.TypeInfo) string {
	if !info.HasAvro() {
		return ""
	}
	p, err := c.plan(info, 0)
	if err != nil {
		return ""
	}
	return p.dataSchema
}

var _ eventmodels.InfoCodec = (*AvroCodec)(nil)

func (c *AvroCodec) plan(info eventmodels.TypeInfo, version int) (*plan, error) {
	key := planKey{info.EventType, version}
	if p := (*c.plans.Load())[key]; p != nil {
		return p, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.plans.Load()
	if p := old[key]; p != nil {
		return p, nil
	}
	p, err := c.buildPlan(info, version)
	if err != nil {
		return nil, err
	}
	next := maps.Clone(old)
	next[key] = p
	c.plans.Store(&next)
	return p, nil
}

func (c *AvroCodec) buildPlan(info eventmodels.TypeInfo, version int) (*plan, error) {
	if info.AvroPayload != "" {
		return payloadPlan(info, version)
	}
	if info.Schema == "" {
		return nil, fmt.Errorf("schemas: event type %q has no Avro form (register it with eventmodels.AvroPayload, or send it as JSON)", info.EventType)
	}
	cur, ok := c.cat.Current(info.Schema)
	if !ok {
		return nil, fmt.Errorf("schemas: event type %q: no schema %q in the catalog", info.EventType, info.Schema)
	}
	reader, index, ok := record(cur.Avro, info.AvroName)
	if !ok {
		return nil, fmt.Errorf("schemas: event type %q: schema %q has no record %q", info.EventType, info.Schema, info.AvroName)
	}
	if version == 0 || version == cur.Version {
		payload, err := splitRecord(reader, cur.Version)
		if err != nil {
			return nil, err
		}
		return &plan{schema: cur, index: index, payload: payload, dataSchema: cur.DataSchema(), labels: labelFields(info),
			ints: intChecks(payload, reflect.TypeOf(info.New()).Elem())}, nil
	}
	old, ok := c.cat.Version(info.Schema, version)
	if !ok {
		return nil, fmt.Errorf("%w: %s v%d (newest known: v%d)", ErrUnknownSchemaVersion, info.Schema, version, cur.Version)
	}
	writer, windex, ok := record(old.Avro, info.AvroName)
	if !ok {
		return nil, fmt.Errorf("%w: %s v%d has no record %q", ErrUnknownSchemaVersion, info.Schema, version, info.AvroName)
	}
	resolved, err := avro.NewSchemaCompatibility().Resolve(reader, writer)
	if err != nil {
		return nil, fmt.Errorf("schemas: %s v%d cannot be read as v%d: %w", info.Schema, version, cur.Version, err)
	}
	payload, err := splitRecord(resolved.(*avro.RecordSchema), version)
	if err != nil {
		return nil, err
	}
	return &plan{schema: old, index: windex, payload: payload, dataSchema: old.DataSchema(), labels: labelFields(info)}, nil
}

// Encode returns the Avro body of e, written with the current version of its
// schema. e's type must be registered with a schema. It does not validate
// e, but it never writes a value its Avro type cannot carry: an integer
// beyond 32 bits in an int field, or a timestamp beyond the int64
// milliseconds of timestamp-millis, fails with an error wrapping
// ErrOutOfRange that names the field.
func (c *AvroCodec) Encode(e eventmodels.Event) ([]byte, error) {
	info, err := c.reg.InfoOf(e)
	if err != nil {
		return nil, err
	}
	return c.EncodeInfo(info, e)
}

// EncodeInfo implements eventmodels.InfoCodec: Encode for an event of the
// registered type info.
func (c *AvroCodec) EncodeInfo(info eventmodels.TypeInfo, e eventmodels.Event) ([]byte, error) {
	p, err := c.plan(info, 0)
	if err != nil {
		return nil, err
	}
	if err := checkEnvelope(e.Envelope()); err != nil {
		return nil, fmt.Errorf("schemas: encode %s: %w", info.EventType, err)
	}
	if len(p.ints) > 0 {
		if err := checkInts(reflect.ValueOf(e).Elem(), p.ints); err != nil {
			return nil, fmt.Errorf("schemas: encode %s: %w", info.EventType, err)
		}
	}
	w := c.writers.Get().(*avro.Writer)
	defer c.writers.Put(w)
	w.Reset(nil)
	w.Error = nil
	if p.index >= 0 {
		w.WriteLong(int64(p.index))
	}
	writeEnvelope(w, e.Envelope())
	w.WriteVal(p.payload, e)
	if w.Error != nil {
		return nil, fmt.Errorf("schemas: encode %s: %w", info.EventType, w.Error)
	}
	return append([]byte(nil), w.Buffer()...), nil
}

// Decode reads an Avro body of type meta.EventType written with schema
// version meta.SchemaVersion (0: current) and validates it. Errors are
// *eventmodels.DecodeError wrapping eventmodels.ErrUnknownEventType,
// ErrTooLarge, ErrMalformed, ErrUnknownSchemaVersion or a
// *eventmodels.ValidationError.
func (c *AvroCodec) Decode(data []byte, meta eventmodels.Meta) (ev eventmodels.Event, err error) {
	typ := meta.EventType
	fail := func(err error) (eventmodels.Event, error) {
		return nil, eventmodels.DecodeFailure(eventmodels.ContentTypeAvro, typ, err)
	}
	if len(data) > c.maxSize {
		return fail(eventmodels.TooLarge(len(data), c.maxSize))
	}
	if typ == "" {
		return fail(eventmodels.Malformed(errors.New("an Avro body needs its event type (ce_type header)")))
	}
	info, ok := c.reg.Lookup(typ)
	if !ok {
		return fail(fmt.Errorf("%w %q", eventmodels.ErrUnknownEventType, typ))
	}
	return c.DecodeInfo(info, data, meta.SchemaVersion)
}

// DecodeInfo implements eventmodels.InfoCodec: Decode for a body of the
// registered type info, written with schema version (0: current).
func (c *AvroCodec) DecodeInfo(info eventmodels.TypeInfo, data []byte, version int) (eventmodels.Event, error) {
	typ := info.EventType
	fail := func(err error) (eventmodels.Event, error) {
		return nil, eventmodels.DecodeFailure(eventmodels.ContentTypeAvro, typ, err)
	}
	if len(data) > c.maxSize {
		return fail(eventmodels.TooLarge(len(data), c.maxSize))
	}
	p, err := c.plan(info, version)
	if err != nil {
		return fail(err)
	}
	e := info.New()
	if err := c.read(data, p, e); err != nil {
		return fail(eventmodels.Malformed(err))
	}
	if got := e.Envelope().EventType; got != typ {
		return fail(eventmodels.Malformed(fmt.Errorf("header type %q, body type %q", typ, got)))
	}
	emptyLabelsToNil(e, p.labels)
	if err := e.Validate(); err != nil {
		return fail(err)
	}
	return e, nil
}

func (c *AvroCodec) read(data []byte, p *plan, e eventmodels.Event) (err error) {
	r := c.readers.Get().(*avro.Reader)
	defer func() {
		// The decoder is third-party code fed hostile bytes: a panic in it
		// must become an error, not a crash of the consumer.
		if v := recover(); v != nil {
			err = fmt.Errorf("avro decoder panic: %v", v)
			return
		}
		c.readers.Put(r)
	}()
	r.Reset(data)
	r.Error = nil
	if p.index >= 0 {
		if idx := r.ReadLong(); r.Error == nil && idx != int64(p.index) {
			return fmt.Errorf("union branch %d, want %d for this event type", idx, p.index)
		}
	}
	readEnvelope(r, e.Envelope())
	if r.Error != nil {
		return r.Error
	}
	r.ReadVal(p.payload, e)
	if r.Error != nil {
		return r.Error
	}
	if r.Peek(); r.Error == nil {
		return errors.New("trailing bytes after the record")
	}
	return nil
}

// NewCodecs returns the codec set of the platform for reg: Avro (the
// default) and JSON, both bounded to maxSize bytes (0: the default limit).
func NewCodecs(reg *eventmodels.Registry, maxSize int) (*eventmodels.CodecSet, error) {
	opts := []CodecOption{}
	if maxSize > 0 {
		opts = append(opts, WithMaxEventSize(maxSize))
	}
	avroCodec, err := NewAvroCodec(reg, opts...)
	if err != nil {
		return nil, err
	}
	return eventmodels.NewCodecSet(avroCodec, eventmodels.NewJSONCodec(reg, maxSize)), nil
}

// emptyLabelsToNil makes every empty Labels field (paths from labelFields)
// nil, as the JSON codec decodes it (LabelsOf), so one event compares equal
// whichever codec carried it: hamba/avro decodes an empty array as an empty
// slice.
func emptyLabelsToNil(e eventmodels.Event, paths [][]int) {
	if len(paths) == 0 {
		return
	}
	v := reflect.ValueOf(e).Elem()
	for _, path := range paths {
		if f := v.FieldByIndex(path); f.Len() == 0 && !f.IsNil() {
			f.SetZero()
		}
	}
}

var labelsType = reflect.TypeFor[eventmodels.Labels]()

// labelFields returns the index paths of the Labels fields of info's Go
// type, in exported fields and nested structs (not through pointers, slices
// or maps), found once per plan.
func labelFields(info eventmodels.TypeInfo) [][]int {
	t := reflect.TypeOf(info.New())
	if t.Kind() != reflect.Pointer || t.Elem().Kind() != reflect.Struct {
		return nil
	}
	var out [][]int
	var walk func(t reflect.Type, prefix []int, depth int)
	walk = func(t reflect.Type, prefix []int, depth int) {
		if depth > 8 { // deeper nesting is not an event model
			return
		}
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			path := append(slices.Clone(prefix), i)
			switch {
			case f.Type == labelsType:
				out = append(out, path)
			case f.Type.Kind() == reflect.Struct:
				walk(f.Type, path, depth+1)
			}
		}
	}
	walk(t.Elem(), nil, 0)
	return out
}
