package eventmodels

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sort"
)

// Label is one key/value pair of a Labels set.
type Label struct {
	Key   string `json:"key" avro:"key"`
	Value string `json:"value" avro:"value"`
}

// Labels is a small set of string key/value pairs (job parameters, audit
// details). Unlike a Go map it has an order, so an event's encoding is the
// same bytes every time: in JSON it is an object with keys in slice order, in
// Avro an array of {key, value} records. LabelsOf and decoding from JSON sort
// by key; Validate rejects empty or duplicate keys, keys with control
// characters (they are identifiers) and values with control characters
// other than newline and tab (they are free text).
type Labels []Label

// LabelsOf returns the pairs of m sorted by key.
func LabelsOf(m map[string]string) Labels {
	if len(m) == 0 {
		return nil
	}
	out := make(Labels, 0, len(m))
	for k, v := range m {
		out = append(out, Label{k, v})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out
}

// Get returns the value of key.
func (l Labels) Get(key string) (string, bool) {
	for _, p := range l {
		if p.Key == key {
			return p.Value, true
		}
	}
	return "", false
}

// Map returns the pairs as a map.
func (l Labels) Map() map[string]string {
	m := make(map[string]string, len(l))
	for _, p := range l {
		m[p.Key] = p.Value
	}
	return m
}

// MarshalJSON writes l as a JSON object, keys in slice order.
func (l Labels) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, p := range l {
		if i > 0 {
			b.WriteByte(',')
		}
		k, err := json.Marshal(p.Key)
		if err != nil {
			return nil, err
		}
		v, err := json.Marshal(p.Value)
		if err != nil {
			return nil, err
		}
		b.Write(k)
		b.WriteByte(':')
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON reads a JSON object of strings, sorted by key.
func (l *Labels) UnmarshalJSON(data []byte) error {
	var m map[string]string
	if err := json.Unmarshal(data, &m); err != nil {
		return err
	}
	*l = LabelsOf(m)
	return nil
}

func (l Labels) validate(v *validator, field string, maxEntries int) {
	if len(l) > maxEntries {
		v.add(field, fmt.Sprintf("must have at most %d entries", maxEntries))
		return
	}
	seen := make(map[string]bool, len(l))
	for _, p := range l {
		switch {
		case p.Key == "" || len(p.Key) > maxNameLength:
			v.add(field, "keys must be 1–256 bytes")
			return
		case len(p.Value) > MaxTextLength:
			v.add(field, fmt.Sprintf("values must be at most %d bytes", MaxTextLength))
			return
		case identProblem(p.Key) != "":
			v.add(field, fmt.Sprintf("key %q: %s", p.Key, identProblem(p.Key)))
			return
		case textProblem(p.Value) != "":
			v.add(field, fmt.Sprintf("value of %q: %s", p.Key, textProblem(p.Value)))
			return
		case seen[p.Key]:
			v.add(field, fmt.Sprintf("duplicate key %q", p.Key))
			return
		}
		seen[p.Key] = true
	}
}
