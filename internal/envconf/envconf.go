// Package envconf reads the SDK's environment variables: comma-separated
// lists (broker addresses, node URLs, queue names) split the same way
// everywhere, and typed values whose parse errors are collected, so that a
// ConfigFromEnv reports every bad variable at once.
package envconf

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Split splits s at commas, trims the spaces around each item and drops
// the empty ones: " a, ,b " gives [a b]; "" and " , " give nil.
func Split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// Reader reads variables through Lookup (os.LookupEnv, or a map in
// tests). An unset or empty variable leaves its destination alone; one
// that does not parse is recorded, named, in Err.
type Reader struct {
	Lookup func(name string) (string, bool)
	errs   []error
}

// Get returns the variable's value and whether it is set and not empty.
func (r *Reader) Get(name string) (string, bool) {
	v, ok := r.Lookup(name)
	return v, ok && v != ""
}

// String sets *dst to the variable's value.
func (r *Reader) String(name string, dst *string) {
	if v, ok := r.Get(name); ok {
		*dst = v
	}
}

// List sets *dst to the variable split with Split.
func (r *Reader) List(name string, dst *[]string) {
	if v, ok := r.Get(name); ok {
		*dst = Split(v)
	}
}

// Duration sets *dst to the variable parsed as a Go duration ("2s").
func (r *Reader) Duration(name string, dst *time.Duration) {
	if v, ok := r.Get(name); ok {
		d, err := time.ParseDuration(v)
		if err != nil {
			r.Fail(fmt.Errorf("%s=%q: not a duration (e.g. 2s, 500ms)", name, v))
			return
		}
		*dst = d
	}
}

// Int sets *dst to the variable parsed as a decimal integer.
func (r *Reader) Int(name string, dst *int) {
	if v, ok := r.Get(name); ok {
		n, err := strconv.Atoi(v)
		if err != nil {
			r.Fail(fmt.Errorf("%s=%q: not an integer", name, v))
			return
		}
		*dst = n
	}
}

// Bool sets *dst to the variable parsed by strconv.ParseBool.
func (r *Reader) Bool(name string, dst *bool) {
	if v, ok := r.Get(name); ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			r.Fail(fmt.Errorf("%s=%q: not a boolean (true, false, 1, 0)", name, v))
			return
		}
		*dst = b
	}
}

// Fail records an error of the caller's own checks.
func (r *Reader) Fail(err error) { r.errs = append(r.errs, err) }

// Err joins every error recorded, or is nil.
func (r *Reader) Err() error { return errors.Join(r.errs...) }
