package notifysvc_test

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/notifysvc"
)

func writeFile(t *testing.T, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "prefs.json")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestLoadPreferences(t *testing.T) {
	p, err := notifysvc.LoadPreferences(writeFile(t, `{
  "default": {"events": ["job.failed", "job.cancelled"], "channels": ["log"]},
  "users": {"ann": {"events": ["#"]}, "ben": {"channels": ["push", "webhook"]}, "cat": {"events": []}}
}`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		user     string
		channels []eventmodels.Channel
		wants    map[string]bool
	}{
		{"ann", []eventmodels.Channel{"log"}, map[string]bool{"job.completed": true, "job.failed": true, "job.cancelled": true}},
		{"ben", []eventmodels.Channel{"push", "webhook"}, map[string]bool{"job.completed": false, "job.failed": true, "job.cancelled": true}},
		{"cat", []eventmodels.Channel{"log"}, map[string]bool{"job.completed": false, "job.failed": false, "job.cancelled": false}},
		{"zed", []eventmodels.Channel{"log"}, map[string]bool{"job.completed": false, "job.failed": true, "job.cancelled": true}},
	} {
		pr := p.For(tc.user)
		if !reflect.DeepEqual(pr.Channels, tc.channels) {
			t.Errorf("%s: channels %v, want %v", tc.user, pr.Channels, tc.channels)
		}
		for ev, want := range tc.wants {
			if pr.Wants(ev) != want {
				t.Errorf("%s: Wants(%s) = %v, want %v", tc.user, ev, !want, want)
			}
		}
	}
	if got := p.Channels(); !reflect.DeepEqual(got, []eventmodels.Channel{"log", "push", "webhook"}) {
		t.Errorf("Channels() = %v", got)
	}
}

func TestLoadPreferencesErrors(t *testing.T) {
	for _, tc := range []struct {
		name, content string
		want          []string
	}{
		{"empty", "  \n", []string{"empty"}},
		{"syntax", "{\n  \"default\": {\"events\": [\"job.failed\",]}\n}", []string{"line 2, column", "invalid JSON"}},
		{"truncated", `{"default": {"events": [`, []string{"ends in the middle"}},
		{"unknown field", `{"default": {"events": ["#"], "channels": ["log"], "chanels": []}}`, []string{`unknown field "chanels"`}},
		{"wrong type", `{"default": {"events": "job.failed", "channels": ["log"]}}`, []string{"default.events must be a list, not a JSON string"}},
		{"trailing", `{"default": {"events": ["#"], "channels": ["log"]}} {}`, []string{"unexpected data after the JSON object"}},
		{"missing default", `{"users": {"ann": {"events": ["#"], "channels": ["log"]}}}`, []string{"default: events is required", "default: channels is required"}},
		{"bad values", `{"default": {"events": ["job.done", "job..x", "job.failed", "job.failed"], "channels": ["pager", "log", "log"]},
			"users": {"": {}, "ann": {"channels": ["fax"]}}}`, []string{
			`default: event "job.done" matches none of job.completed, job.failed, job.cancelled`,
			`default: event pattern "job..x" is malformed`,
			`default: event "job.failed" listed twice`,
			`default: unknown channel "pager"`,
			`default: channel "log" listed twice`,
			`users: a user name is empty`,
			`users["ann"]: unknown channel "fax"`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, tc.content)
			_, err := notifysvc.LoadPreferences(path)
			var pe *notifysvc.PreferencesError
			if !errors.As(err, &pe) {
				t.Fatalf("error %v is not a *PreferencesError", err)
			}
			if pe.Path != path || !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not say %q", err, w)
				}
			}
		})
	}
	_, err := notifysvc.LoadPreferences(filepath.Join(t.TempDir(), "missing.json"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
}
