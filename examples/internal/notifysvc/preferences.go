package notifysvc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/eventmodels"
)

// NotifiableEvents are the job event types that trigger notifications, in
// lifecycle order.
func NotifiableEvents() []string {
	return []string{eventmodels.TypeJobCompleted, eventmodels.TypeJobFailed, eventmodels.TypeJobCancelled}
}

// Preference says which events reach a user and through which channels.
type Preference struct {
	// Events are event-type patterns (AMQP topic syntax, as
	// broker.Subscription.EventTypes: "job.failed", "job.*", "#"); each
	// must match at least one of NotifiableEvents. In a user's entry, a
	// missing list (null) inherits the default's; an empty list means
	// none.
	Events []string `json:"events"`
	// Channels are the channels to deliver through ("log", "webhook",
	// "push", …); same inheritance rule as Events.
	Channels []eventmodels.Channel `json:"channels"`
}

// Wants reports whether eventType matches one of p.Events.
func (p Preference) Wants(eventType string) bool {
	for _, pat := range p.Events {
		if broker.MatchEventType(pat, eventType) {
			return true
		}
	}
	return false
}

// Preferences are the notification preferences of every user: Default for
// users without an entry of their own, Users for those with one. A user's
// entry replaces the default field by field (see Preference).
//
// The file read by LoadPreferences has the same shape:
//
//	{
//	  "default": {"events": ["job.failed", "job.cancelled"], "channels": ["log", "push"]},
//	  "users": {
//	    "alice": {"events": ["job.*"], "channels": ["log", "push", "webhook"]},
//	    "bob":   {"channels": []}
//	  }
//	}
type Preferences struct {
	Default Preference            `json:"default"`
	Users   map[string]Preference `json:"users,omitempty"`
}

// DefaultPreferences sends every notifiable event through every one of
// channels, for every user.
func DefaultPreferences(channels ...eventmodels.Channel) *Preferences {
	return &Preferences{Default: Preference{Events: []string{"#"}, Channels: slices.Clone(channels)}}
}

// For returns the effective preference of user.
func (p *Preferences) For(user string) Preference {
	out := p.Default
	if u, ok := p.Users[user]; ok {
		if u.Events != nil {
			out.Events = u.Events
		}
		if u.Channels != nil {
			out.Channels = u.Channels
		}
	}
	return out
}

// Channels returns every channel some entry names, sorted.
func (p *Preferences) Channels() []eventmodels.Channel {
	set := map[eventmodels.Channel]bool{}
	for _, c := range p.Default.Channels {
		set[c] = true
	}
	for _, u := range p.Users {
		for _, c := range u.Channels {
			set[c] = true
		}
	}
	out := make([]eventmodels.Channel, 0, len(set))
	for c := range set {
		out = append(out, c)
	}
	slices.Sort(out)
	return out
}

// PreferencesError reports every problem of a preferences file (or of a
// Preferences value: Path is then empty).
type PreferencesError struct {
	// Path is the file read, if any.
	Path string
	// Problems, one sentence each, naming the entry and field at fault.
	Problems []string
}

// Error implements error.
func (e *PreferencesError) Error() string {
	where := "notifysvc: preferences"
	if e.Path != "" {
		where += " " + e.Path
	}
	return where + ": " + strings.Join(e.Problems, "; ")
}

// Validate reports every problem of p in one *PreferencesError: unknown
// channels, event patterns that are malformed or match no notifiable event,
// duplicates, empty user names.
func (p *Preferences) Validate() error {
	var probs []string
	check := func(where string, pr Preference, isDefault bool) {
		if isDefault && pr.Events == nil {
			probs = append(probs, where+": events is required (use [] for none)")
		}
		if isDefault && pr.Channels == nil {
			probs = append(probs, where+": channels is required (use [] for none)")
		}
		seenEv := map[string]bool{}
		for _, pat := range pr.Events {
			if seenEv[pat] {
				probs = append(probs, fmt.Sprintf("%s: event %q listed twice", where, pat))
			}
			seenEv[pat] = true
			sub := broker.Subscription{Topic: "t", Ephemeral: true, EventTypes: []string{pat}}
			if err := sub.Validate(); err != nil {
				probs = append(probs, fmt.Sprintf("%s: event pattern %q is malformed", where, pat))
				continue
			}
			if !slices.ContainsFunc(NotifiableEvents(), func(t string) bool { return broker.MatchEventType(pat, t) }) {
				probs = append(probs, fmt.Sprintf("%s: event %q matches none of %s", where, pat, strings.Join(NotifiableEvents(), ", ")))
			}
		}
		seenCh := map[eventmodels.Channel]bool{}
		for _, c := range pr.Channels {
			if !c.Valid() {
				probs = append(probs, fmt.Sprintf("%s: unknown channel %q (known: log, email, webhook, push, sms)", where, c))
			}
			if seenCh[c] {
				probs = append(probs, fmt.Sprintf("%s: channel %q listed twice", where, c))
			}
			seenCh[c] = true
		}
	}
	check("default", p.Default, true)
	users := make([]string, 0, len(p.Users))
	for u := range p.Users {
		users = append(users, u)
	}
	sort.Strings(users)
	for _, u := range users {
		if strings.TrimSpace(u) == "" {
			probs = append(probs, "users: a user name is empty")
			continue
		}
		check(fmt.Sprintf("users[%q]", u), p.Users[u], false)
	}
	if len(probs) == 0 {
		return nil
	}
	return &PreferencesError{Problems: probs}
}

// MaxPreferencesBytes bounds a preferences file.
const MaxPreferencesBytes = 1 << 20

// LoadPreferences reads and validates a preferences file (JSON, see
// Preferences). A file that cannot be read returns the os error wrapped
// (errors.Is(err, fs.ErrNotExist) works); a file that is not valid
// JSON, has unknown fields, or breaks a rule returns a *PreferencesError
// naming the file, the line and column of a syntax error, and every
// problem.
func LoadPreferences(path string) (*Preferences, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("notifysvc: preferences: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxPreferencesBytes+1))
	if err != nil {
		return nil, fmt.Errorf("notifysvc: preferences %s: %w", path, err)
	}
	p, err := ParsePreferences(data)
	var pe *PreferencesError
	if errors.As(err, &pe) {
		pe.Path = path
	}
	return p, err
}

// ParsePreferences is LoadPreferences on the file's content.
func ParsePreferences(data []byte) (*Preferences, error) {
	if len(data) > MaxPreferencesBytes {
		return nil, &PreferencesError{Problems: []string{fmt.Sprintf("larger than %d bytes", MaxPreferencesBytes)}}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, &PreferencesError{Problems: []string{`empty; expected a JSON object such as {"default": {"events": ["#"], "channels": ["log"]}}`}}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var p Preferences
	if err := dec.Decode(&p); err != nil {
		return nil, &PreferencesError{Problems: []string{jsonProblem(data, dec, err)}}
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, &PreferencesError{Problems: []string{fmt.Sprintf("%s: unexpected data after the JSON object", position(data, dec.InputOffset()))}}
	}
	if err := p.Validate(); err != nil {
		return nil, err
	}
	return &p, nil
}

func jsonProblem(data []byte, dec *json.Decoder, err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("%s: invalid JSON: %v", position(data, syn.Offset), syn)
	case errors.As(err, &typ):
		field := typ.Field
		if field == "" {
			field = "the top level"
		}
		return fmt.Sprintf("%s: %s must be %s, not a JSON %s", position(data, typ.Offset), field, jsonKind(typ.Type.Kind().String()), typ.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "invalid JSON: the file ends in the middle of a value"
	}
	// Unknown fields ("json: unknown field \"x\"") and the rest.
	return fmt.Sprintf("%s: %s", position(data, dec.InputOffset()), strings.TrimPrefix(err.Error(), "json: "))
}

func jsonKind(k string) string {
	switch k {
	case "slice":
		return "a list"
	case "struct", "map":
		return "an object"
	}
	return "a " + k
}

// position renders a byte offset as "line L, column C" (1-based).
func position(data []byte, off int64) string {
	off = min(max(off, 0), int64(len(data)))
	before := data[:off]
	line := bytes.Count(before, []byte("\n")) + 1
	col := int(off) - bytes.LastIndexByte(before, '\n')
	return fmt.Sprintf("line %d, column %d", line, col)
}
