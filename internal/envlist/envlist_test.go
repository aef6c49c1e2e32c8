package envlist_test

import (
	"slices"
	"testing"

	"github.com/cosmic-horizons/events/internal/envlist"
)

func TestSplit(t *testing.T) {
	for in, want := range map[string][]string{
		"":                       nil,
		" , ,":                   nil,
		"a":                      {"a"},
		" a, ,b ":                {"a", "b"},
		"amqp://h1/,amqp://h2/,": {"amqp://h1/", "amqp://h2/"},
	} {
		if got := envlist.Split(in); !slices.Equal(got, want) || (want == nil && got != nil) {
			t.Errorf("Split(%q) = %#v, want %#v", in, got, want)
		}
	}
}
