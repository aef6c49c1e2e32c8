package schemas

import (
	"fmt"
	"reflect"

	"github.com/hamba/avro/v2"

	"github.com/cosmic-horizons/events/eventmodels"
)

// payloadPlan is the plan of a type of its own (eventmodels.AvroPayload):
// the codec writes the envelope, then the payload record the type gave.
// Its schema, for readers in other languages, is the envelope followed by
// the payload fields, named as the payload record; it is version
// info.PayloadVersion and only that version is read.
func payloadPlan(info eventmodels.TypeInfo, version int) (*plan, error) {
	fail := func(format string, args ...any) (*plan, error) {
		return nil, fmt.Errorf("schemas: event type %q (%v): "+format, append([]any{info.EventType, info.GoType()}, args...)...)
	}
	cur := max(info.PayloadVersion, 1)
	if version != 0 && version != cur {
		return nil, fmt.Errorf("%w: %s v%d (this type is at v%d)", ErrUnknownSchemaVersion, info.EventType, version, cur)
	}
	parsed, err := avro.ParseWithCache(info.AvroPayload, "", &avro.SchemaCache{})
	if err != nil {
		return fail("AvroPayload: %v", err)
	}
	rec, ok := parsed.(*avro.RecordSchema)
	if !ok {
		return fail("AvroPayload must be an Avro record, got %s", parsed.Type())
	}
	for _, f := range rec.Fields() {
		for _, e := range envelopeSchema.Fields() {
			if f.Name() == e.Name() {
				return fail("AvroPayload field %q is an envelope field: leave the envelope out, the codec writes it", f.Name())
			}
		}
	}
	goType := info.GoType()
	if goType == nil {
		goType = reflect.TypeOf(info.New())
	}
	if err := checkTags(rec, goType.Elem(), ""); err != nil {
		return fail("%v", err)
	}
	fields := make([]*avro.Field, 0, len(envelopeSchema.Fields())+len(rec.Fields()))
	for _, f := range append(envelopeSchema.Fields(), rec.Fields()...) {
		nf, err := avro.NewField(f.Name(), f.Type())
		if err != nil {
			return fail("%v", err)
		}
		fields = append(fields, nf)
	}
	full, err := avro.NewRecordSchema(rec.Name(), rec.Namespace(), fields)
	if err != nil {
		return fail("%v", err)
	}
	payload, err := avro.NewRecordSchema(fmt.Sprintf("%sPayloadV%d", rec.Name(), cur), rec.Namespace(), rec.Fields())
	if err != nil {
		return fail("%v", err)
	}
	sch := &Schema{Name: info.EventType, Version: cur, Avro: full, Source: full.String()}
	return &plan{schema: sch, index: -1, payload: payload, dataSchema: sch.DataSchema(), labels: labelFields(info),
		ints: intChecks(payload, goType.Elem())}, nil
}

// checkTags reports the first field of rec (and of the records nested in
// it) that no field of the Go struct t carries, naming the Go type and the
// tag to add.
func checkTags(rec *avro.RecordSchema, t reflect.Type, path string) error {
	for _, f := range rec.Fields() {
		idx, ok := avroField(t, f.Name())
		if !ok {
			return fmt.Errorf("Avro field %q has no field in Go type %v: tag one `avro:%q`", path+f.Name(), t, f.Name())
		}
		ft := t.FieldByIndex(idx).Type
		if sub, ok := nestedRecord(f.Type()); ok {
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice || ft.Kind() == reflect.Array || ft.Kind() == reflect.Map {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft != reflect.TypeFor[eventmodels.Labels]().Elem() {
				if err := checkTags(sub, ft, path+f.Name()+"."); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// nestedRecord returns the record a field's type holds: itself, the items
// of an array, the values of a map, or the non-null branch of a union.
func nestedRecord(s avro.Schema) (*avro.RecordSchema, bool) {
	switch x := s.(type) {
	case *avro.RecordSchema:
		return x, true
	case *avro.ArraySchema:
		return nestedRecord(x.Items())
	case *avro.MapSchema:
		return nestedRecord(x.Values())
	case *avro.UnionSchema:
		for _, t := range x.Types() {
			if t.Type() != avro.Null {
				return nestedRecord(t)
			}
		}
	case *avro.RefSchema:
		return nestedRecord(x.Schema())
	}
	return nil, false
}
