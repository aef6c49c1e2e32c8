package schemas

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/hamba/avro/v2"
)

// hamba/avro writes a Go int (or a time.Duration in a time-millis field)
// into an Avro int by converting it to int32, which keeps the low 32 bits
// of a larger value: 4,294,967,297 arrives as 1. The codec therefore finds,
// once per plan, every Go value that goes into an Avro int field, and
// checks them before writing (intCheck).

// intStep is one step from an event to a value: into field index (a path
// through embedded structs included), through a pointer, or into every
// element of a slice or value of a map.
type intStep struct {
	kind  stepKind
	index []int  // stepField
	name  string // stepField: the Avro field name, for errors
}

type stepKind uint8

const (
	stepField stepKind = iota
	stepPointer
	stepElems // slice or array elements
	stepMapValues
)

// intCheck is one Go value written into an Avro int.
type intCheck struct {
	steps    []intStep
	duration bool // a time.Duration written as time-millis
}

// maxIntCheckDepth bounds the walk through nested records; deeper nesting
// is not an event model (and a recursive schema would not end).
const maxIntCheckDepth = 16

// intChecks returns the checks for a value of Go type t written with
// schema. It looks for Go fields the way hamba/avro does: by the "avro"
// tag, else the field name, searching embedded structs breadth first.
func intChecks(schema avro.Schema, t reflect.Type) []intCheck {
	var out []intCheck
	var walk func(s avro.Schema, t reflect.Type, steps []intStep, depth int)
	walk = func(s avro.Schema, t reflect.Type, steps []intStep, depth int) {
		if depth > maxIntCheckDepth {
			return
		}
		if ref, ok := s.(*avro.RefSchema); ok {
			s = ref.Schema()
		}
		if t.Kind() == reflect.Pointer {
			if _, isUnion := s.(*avro.UnionSchema); !isUnion {
				walk(s, t.Elem(), appendStep(steps, intStep{kind: stepPointer}), depth+1)
				return
			}
		}
		switch s := s.(type) {
		case *avro.PrimitiveSchema:
			if s.Type() != avro.Int {
				return
			}
			lt := ""
			if l := s.Logical(); l != nil {
				lt = string(l.Type())
			}
			switch {
			case lt == "" && (t.Kind() == reflect.Int || t.Kind() == reflect.Int64 || t.Kind() == reflect.Uint ||
				t.Kind() == reflect.Uint32 || t.Kind() == reflect.Uint64 || t.Kind() == reflect.Uintptr):
				out = append(out, intCheck{steps: steps})
			case lt == string(avro.TimeMillis) && t == reflect.TypeFor[time.Duration]():
				out = append(out, intCheck{steps: steps, duration: true})
			}
		case *avro.RecordSchema:
			if t.Kind() != reflect.Struct {
				return
			}
			for _, f := range s.Fields() {
				if index, ok := avroField(t, f.Name()); ok {
					walk(f.Type(), t.FieldByIndex(index).Type, appendStep(steps, intStep{kind: stepField, index: index, name: f.Name()}), depth+1)
				}
			}
		case *avro.ArraySchema:
			if t.Kind() == reflect.Slice || t.Kind() == reflect.Array {
				walk(s.Items(), t.Elem(), appendStep(steps, intStep{kind: stepElems}), depth+1)
			}
		case *avro.MapSchema:
			if t.Kind() == reflect.Map {
				walk(s.Values(), t.Elem(), appendStep(steps, intStep{kind: stepMapValues}), depth+1)
			}
		case *avro.UnionSchema:
			// A nullable union ["null", X] holds a pointer: nil writes
			// null, anything else X. Other unions hold interface values
			// whose type is only known when written; none carries an int
			// field in this module's schemas.
			if !s.Nullable() || t.Kind() != reflect.Pointer {
				return
			}
			for _, branch := range s.Types() {
				if branch.Type() != avro.Null {
					walk(branch, t, steps, depth+1)
				}
			}
		}
	}
	walk(schema, t, nil, 0)
	return out
}

func appendStep(steps []intStep, s intStep) []intStep {
	return append(steps[:len(steps):len(steps)], s)
}

// avroField finds the exported Go field hamba/avro writes into the Avro
// field name: tagged avro:"name" or, untagged, named name; embedded
// structs (not through pointers) are searched breadth first.
func avroField(t reflect.Type, name string) ([]int, bool) {
	type level struct {
		t      reflect.Type
		prefix []int
	}
	next := []level{{t, nil}}
	for len(next) > 0 {
		cur := next
		next = nil
		for _, l := range cur {
			for i := range l.t.NumField() {
				f := l.t.Field(i)
				index := append(l.prefix[:len(l.prefix):len(l.prefix)], i)
				if f.Anonymous {
					if f.Type.Kind() == reflect.Struct {
						next = append(next, level{f.Type, index})
					}
					continue
				}
				if !f.IsExported() {
					continue
				}
				fieldName := f.Name
				if tag, ok := f.Tag.Lookup("avro"); ok {
					fieldName, _, _ = strings.Cut(tag, ",")
				}
				if fieldName == name {
					return index, true
				}
			}
		}
	}
	return nil, false
}

// checkInts returns an error wrapping ErrOutOfRange for the first value of
// v (the event struct, not a pointer) that an Avro int cannot carry. The
// values are checked without allocating; the error's field path is built
// only when one is out of range.
func checkInts(v reflect.Value, checks []intCheck) error {
	for _, c := range checks {
		if !fits(v, c, c.steps) {
			return describeInt(v, c, c.steps, "")
		}
	}
	return nil
}

// fits reports whether every value reached from v by steps fits c's Avro
// type.
func fits(v reflect.Value, c intCheck, steps []intStep) bool {
	for i, s := range steps {
		switch s.kind {
		case stepField:
			v = v.FieldByIndex(s.index)
		case stepPointer:
			if v.IsNil() {
				return true
			}
			v = v.Elem()
		case stepElems:
			for k := range v.Len() {
				if !fits(v.Index(k), c, steps[i+1:]) {
					return false
				}
			}
			return true
		case stepMapValues:
			iter := v.MapRange()
			for iter.Next() {
				if !fits(iter.Value(), c, steps[i+1:]) {
					return false
				}
			}
			return true
		}
	}
	return fitsInt(v, c)
}

func fitsInt(v reflect.Value, c intCheck) bool {
	switch {
	case c.duration:
		ms := time.Duration(v.Int()).Milliseconds()
		return ms >= math.MinInt32 && ms <= math.MaxInt32
	case v.CanInt():
		n := v.Int()
		return n >= math.MinInt32 && n <= math.MaxInt32
	default:
		return v.Uint() <= math.MaxInt32
	}
}

// describeInt walks like fits and returns the error for the first value
// out of range, with its field path ("spec.resources.cpu_cores",
// "items[1].n").
func describeInt(v reflect.Value, c intCheck, steps []intStep, path string) error {
	for i, s := range steps {
		switch s.kind {
		case stepField:
			v = v.FieldByIndex(s.index)
			if path != "" {
				path += "."
			}
			path += s.name
		case stepPointer:
			if v.IsNil() {
				return nil // written as null, or refused by the encoder
			}
			v = v.Elem()
		case stepElems:
			for k := range v.Len() {
				if err := describeInt(v.Index(k), c, steps[i+1:], fmt.Sprintf("%s[%d]", path, k)); err != nil {
					return err
				}
			}
			return nil
		case stepMapValues:
			iter := v.MapRange()
			for iter.Next() {
				if err := describeInt(iter.Value(), c, steps[i+1:], fmt.Sprintf("%s[%v]", path, iter.Key())); err != nil {
					return err
				}
			}
			return nil
		}
	}
	if fitsInt(v, c) {
		return nil
	}
	if c.duration {
		return fmt.Errorf("%w: %s is %v, beyond the %d ms an Avro time-millis int holds", ErrOutOfRange, path, time.Duration(v.Int()), math.MaxInt32)
	}
	if v.CanInt() {
		return outOfIntRange(path, fmt.Sprint(v.Int()))
	}
	return outOfIntRange(path, fmt.Sprint(v.Uint()))
}

func outOfIntRange(path, value string) error {
	return fmt.Errorf("%w: %s is %s, outside the range of an Avro int (%d to %d)", ErrOutOfRange, path, value, math.MinInt32, math.MaxInt32)
}
