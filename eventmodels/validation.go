package eventmodels

import (
	"fmt"
	"math"
	"strings"
)

// FieldError is one broken rule: the JSON name of the field and what is wrong.
type FieldError struct {
	Field   string `json:"field"`
	Problem string `json:"problem"`
}

func (f FieldError) String() string { return f.Field + ": " + f.Problem }

// ValidationError reports every field of an event that breaks a rule.
// Validate methods return it (as error) and decoders wrap it, so
//
//	var ve *eventmodels.ValidationError
//	if errors.As(err, &ve) { for _, f := range ve.Fields { … } }
//
// works on both paths.
type ValidationError struct {
	EventType string
	Fields    []FieldError
}

func (e *ValidationError) Error() string {
	parts := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		parts[i] = f.String()
	}
	typ := e.EventType
	if typ == "" {
		typ = "event"
	}
	return fmt.Sprintf("eventmodels: invalid %s: %s", typ, strings.Join(parts, "; "))
}

// Has reports whether field is among the broken fields.
func (e *ValidationError) Has(field string) bool {
	for _, f := range e.Fields {
		if f.Field == field {
			return true
		}
	}
	return false
}

// Add records one more broken field.
func (e *ValidationError) Add(field, problem string) {
	e.Fields = append(e.Fields, FieldError{Field: field, Problem: problem})
}

// Err returns e as an error, or nil when no field is broken. It lets a
// Validate method end with `return ve.Err()`.
func (e *ValidationError) Err() error {
	if e == nil || len(e.Fields) == 0 {
		return nil
	}
	return e
}

// validator collects field errors for one event. Nested records push a
// prefix ("usage.") that is joined to field names only when a rule breaks, so
// validating a valid event allocates nothing.
type validator struct {
	ve    ValidationError
	path  [4]string
	depth int
}

func (v *validator) push(prefix string) { v.path[v.depth] = prefix; v.depth++ }
func (v *validator) pop()               { v.depth-- }

func (v *validator) add(field, problem string) {
	if v.depth > 0 {
		field = strings.Join(v.path[:v.depth], "") + field
	}
	v.ve.Add(field, problem)
}

func (v *validator) required(field, value string) {
	if strings.TrimSpace(value) == "" {
		v.add(field, "must not be empty")
	}
}

// ident checks an identifier, name or key: at most n bytes, valid UTF-8,
// no control or format characters (see identProblem).
func (v *validator) ident(field, value string, n int) {
	if p := identCheck(value, n); p != "" {
		v.add(field, p)
	}
}

// text checks free text: at most n bytes, valid UTF-8, no control
// characters but newline and tab (see textProblem).
func (v *validator) text(field, value string, n int) {
	if p := textCheck(value, n); p != "" {
		v.add(field, p)
	}
}

func identCheck(value string, n int) string {
	if len(value) > n {
		return tooLong(value, n)
	}
	return identProblem(value)
}

func textCheck(value string, n int) string {
	if len(value) > n {
		return tooLong(value, n)
	}
	return textProblem(value)
}

func tooLong(value string, n int) string {
	return fmt.Sprintf("must be at most %d bytes, got %d", n, len(value))
}

// nonNegative refuses a negative number, NaN and ±Inf (JSON cannot write
// the last two, so an event carrying them could not travel as JSON).
func (v *validator) nonNegative(field string, value float64) {
	if !(value >= 0 && value <= math.MaxFloat64) { // also false for NaN
		v.add(field, "must be a finite, non-negative number")
	}
}

// isFinite reports whether x is neither NaN nor ±Inf.
func isFinite(x float64) bool { return !math.IsNaN(x) && !math.IsInf(x, 0) }

// between refuses an integer outside [lo, hi], naming the bound it
// passes.
func (v *validator) between(field string, value, lo, hi int64) {
	switch {
	case value < lo && lo == 0:
		v.add(field, "must not be negative")
	case value < lo:
		v.add(field, fmt.Sprintf("must be at least %d", lo))
	case value > hi:
		v.add(field, fmt.Sprintf("must be at most %d", hi))
	}
}

func (v *validator) result() *ValidationError {
	if len(v.ve.Fields) == 0 {
		return nil
	}
	out := v.ve
	return &out
}

// check runs the envelope rules, the type's own rules through fn, and
// returns nil or a *ValidationError naming the event type.
func check(b *Base, want string, fn func(v *validator)) error {
	var v validator
	b.validate(&v)
	if b.EventType != "" && b.EventType != want {
		v.add("event_type", fmt.Sprintf("must be %q", want))
	}
	fn(&v)
	ve := v.result()
	if ve == nil {
		return nil
	}
	ve.EventType = want
	return ve
}
