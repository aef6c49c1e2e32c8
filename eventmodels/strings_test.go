package eventmodels_test

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/internal/samples"
)

// stringField is one string of an event, found by reflection, with its path
// ("spec.parameters[0].value").
type stringField struct {
	path string
	v    reflect.Value
}

func stringFields(v reflect.Value, prefix string) []stringField {
	var out []stringField
	switch v.Kind() {
	case reflect.String:
		return []stringField{{prefix, v}}
	case reflect.Slice:
		for i := range v.Len() {
			out = append(out, stringFields(v.Index(i), fmt.Sprintf("%s[%d]", prefix, i))...)
		}
	case reflect.Struct:
		t := v.Type()
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			if f.Anonymous {
				out = append(out, stringFields(v.Field(i), prefix)...)
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if prefix != "" {
				name = prefix + "." + name
			}
			out = append(out, stringFields(v.Field(i), name)...)
		}
	}
	return out
}

// textFields are the free-text fields: they may hold newlines and tabs.
// Every other string of an event is an identifier, a name, a key or an
// enumeration symbol and may hold no control character at all; a string
// field added later is held to that stricter rule until listed here.
var textFields = regexp.MustCompile(`^(message|error_message|reason|title|checks\[\d+\]\.message|spec\.parameters\[\d+\]\.value|details\[\d+\]\.value)$`)

// TestControlCharactersInStrings puts control characters, one at a time,
// into every string field of every event type: identifiers refuse them all;
// free text takes newline and tab and refuses the rest (ANSI escapes,
// carriage return, C1 controls); every string must be valid UTF-8.
func TestControlCharactersInStrings(t *testing.T) {
	cases := []struct {
		name    string
		insert  string
		textsOK bool
		identOK bool
	}{
		{"plain", "x", true, true},
		{"newline", "\n", true, false},
		{"tab", "\t", true, false},
		{"carriage return", "\r", false, false},
		{"ANSI colour", "\x1b[31m", false, false},
		{"NUL", "\x00", false, false},
		{"DEL", "\x7f", false, false},
		{"C1 CSI", "\u009b31m", false, false},
		{"bidi override", "\u202e", true, false},
		{"zero-width joiner", "\u200d", true, false},
		{"line separator", "\u2028", true, false},
		{"invalid UTF-8", "\xff\xfe", false, false},
		{"non-ASCII letters", "ünïcödé ✓", true, true},
	}
	for i, sample := range samples.All() {
		typ := sample.Envelope().EventType
		fields := stringFields(reflect.ValueOf(sample).Elem(), "")
		for k, f := range fields {
			text := textFields.MatchString(f.path)
			for _, c := range cases {
				e := samples.All()[i]
				fv := stringFields(reflect.ValueOf(e).Elem(), "")[k].v
				head := []rune(fv.String())
				fv.SetString(string(head[:min(len(head), 3)]) + c.insert + "z")
				err := e.Validate()
				wantOK := c.identOK
				if text {
					wantOK = c.textsOK
				}
				if f.path == "event_type" || isEnum(fv) {
					wantOK = false // any change makes them an unknown symbol
				}
				if wantOK {
					if err != nil {
						t.Errorf("%s %s with %s: %v, want valid", typ, f.path, c.name, err)
					}
					continue
				}
				var ve *eventmodels.ValidationError
				if !errors.As(err, &ve) {
					t.Errorf("%s %s with %s: Validate() = %v, want a *ValidationError", typ, f.path, c.name, err)
					continue
				}
				if !namesField(ve, f.path) {
					t.Errorf("%s %s with %s: %v does not name the field", typ, f.path, c.name, ve)
				}
				if strings.ContainsAny(ve.Error(), "\n\r\x1b\x00\x7f\u009b\u202e\u2028") {
					t.Errorf("%s %s with %s: the error message carries the raw character: %q", typ, f.path, c.name, ve.Error())
				}
			}
		}
	}
}

// isEnum reports whether v is one of the enumerations (JobStatus, Channel,
// …): a named string type of this module.
func isEnum(v reflect.Value) bool { return v.Type() != reflect.TypeFor[string]() }

// namesField reports whether ve names path or the field holding it (a
// Labels set is reported as a whole: "spec.parameters").
func namesField(ve *eventmodels.ValidationError, path string) bool {
	for _, f := range ve.Fields {
		if f.Field == path || strings.HasPrefix(path, f.Field+"[") || strings.HasPrefix(path, f.Field+".") {
			return true
		}
	}
	return false
}

func TestCleanText(t *testing.T) {
	cases := []struct{ in, want string }{
		{"plain ünïcode ✓", "plain ünïcode ✓"},
		{"two\nlines\tand a tab", "two\nlines\tand a tab"},
		{"\x1b[31mred\x1b[0m", `\x1b[31mred\x1b[0m`},
		{"crlf\r\nline", "crlf\nline"},
		{"lone\rreturn", `lone\rreturn`},
		{"nul\x00 del\x7f c1\u009b", `nul\x00 del\x7f c1\u009b`},
		{"bad \xff utf-8", "bad \ufffd utf-8"},
	}
	for _, c := range cases {
		if got := eventmodels.CleanText(c.in); got != c.want {
			t.Errorf("CleanText(%q) = %q, want %q", c.in, got, c.want)
		}
	}
	// Whatever goes in, what comes out is valid free text.
	for _, c := range cases {
		n := eventmodels.NewJobFailed("u", "job-1", eventmodels.StatusRunning, eventmodels.ErrorUnknown, eventmodels.CleanText(c.in+"x"))
		if err := n.Validate(); err != nil {
			t.Errorf("CleanText(%q) is not valid text: %v", c.in, err)
		}
	}
}
