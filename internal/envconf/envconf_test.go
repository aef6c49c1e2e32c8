package envconf_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cosmic-horizons/events/internal/envconf"
)

func TestSplit(t *testing.T) {
	for in, want := range map[string][]string{
		"":                       nil,
		" , ,":                   nil,
		"a":                      {"a"},
		" a, ,b ":                {"a", "b"},
		"amqp://h1/,amqp://h2/,": {"amqp://h1/", "amqp://h2/"},
	} {
		if got := envconf.Split(in); !slices.Equal(got, want) || (want == nil && got != nil) {
			t.Errorf("Split(%q) = %#v, want %#v", in, got, want)
		}
	}
}

func TestReaderCollectsEveryError(t *testing.T) {
	env := map[string]string{"D": "2s", "BAD_D": "soon", "N": "7", "BAD_N": "seven", "B": "true", "BAD_B": "maybe", "L": "a, b", "S": "x", "EMPTY": ""}
	r := envconf.Reader{Lookup: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	var (
		d, badD   time.Duration = 0, time.Minute
		n, badN   int           = 0, 3
		b, badB   bool
		l         []string
		s, empty  string = "", "kept"
		unsetSeen int    = 9
	)
	r.Duration("D", &d)
	r.Duration("BAD_D", &badD)
	r.Int("N", &n)
	r.Int("BAD_N", &badN)
	r.Bool("B", &b)
	r.Bool("BAD_B", &badB)
	r.List("L", &l)
	r.String("S", &s)
	r.String("EMPTY", &empty)
	r.Int("UNSET", &unsetSeen)
	if d != 2*time.Second || n != 7 || !b || !slices.Equal(l, []string{"a", "b"}) || s != "x" {
		t.Errorf("parsed d=%v n=%d b=%v l=%v s=%q", d, n, b, l, s)
	}
	if badD != time.Minute || badN != 3 || badB || empty != "kept" || unsetSeen != 9 {
		t.Errorf("a bad, empty or unset variable changed its destination: %v %d %v %q %d", badD, badN, badB, empty, unsetSeen)
	}
	err := r.Err()
	for _, name := range []string{"BAD_D", "BAD_N", "BAD_B"} {
		if err == nil || !strings.Contains(err.Error(), name) {
			t.Errorf("Err() = %v, want it to name %s", err, name)
		}
	}
	if strings.Contains(err.Error(), `"D=`) {
		t.Errorf("Err() names a good variable: %v", err)
	}
}
