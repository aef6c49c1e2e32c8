package rabbittest

import (
	"regexp"
	"strings"
	"testing"

	amqp "github.com/rabbitmq/amqp091-go"
)

var validName = regexp.MustCompile(`^[A-Za-z0-9_.-]+$`)

// TestNameShape: names are valid AMQP names of bounded length, carry a
// fragment of the test name, never use the reserved amq. prefix, and differ
// on every call.
func TestNameShape(t *testing.T) {
	for _, tc := range []struct {
		test, prefix string
		wantPrefix   string
		wantFrag     string
	}{
		{"TestOrders", "orders", "orders.", "TestOrders"},
		{"TestX/sub_case#01", "jobs events/λ", "jobs-events", "TestX-sub_case-01"},
		{"TestX", "", "q.", "TestX"},
		{"TestX", "amq.direct", "x-amq.direct", "TestX"},
		{"TestX", strings.Repeat("p", 300), strings.Repeat("p", maxPrefixLen) + ".", "TestX"},
		{strings.Repeat("TestLong/", 40) + "leaf", "q", "q.", "leaf"},
		{"", "q", "q.", "test"},
	} {
		s := newNameSet(tc.test)
		seen := map[string]bool{}
		for range 500 {
			n := s.next(tc.prefix)
			if seen[n] {
				t.Fatalf("name %q handed out twice", n)
			}
			seen[n] = true
			if len(n) > MaxNameLen || len(n+".dlq") > 255 || !validName.MatchString(n) {
				t.Fatalf("invalid name %q (len %d)", n, len(n))
			}
			if !strings.HasPrefix(n, tc.wantPrefix) || !strings.Contains(n, tc.wantFrag) || strings.HasPrefix(n, "amq.") {
				t.Fatalf("name %q: want prefix %q and fragment %q", n, tc.wantPrefix, tc.wantFrag)
			}
		}
		if got := len(s.all()); got != 500 {
			t.Fatalf("recorded %d names, want 500", got)
		}
	}
}

// TestCleanupDeletesEverything: a test's queues and exchanges, under every
// handed-out name and its .dlq/.dlx companions, classic and quorum, empty
// or not, are gone once the test ends, and so are those of tracked names;
// names never declared cause no error; connections from Dial are closed.
func TestCleanupDeletesEverything(t *testing.T) {
	check := mustDial(t, URL(t), amqp.Config{})
	var names []string
	var inner *amqp.Connection
	ok := t.Run("inner", func(t *testing.T) {
		f := New(t)
		inner = f.Dial()
		ch := mustChannel(t, inner)
		classic, quorum, unused := f.Name("classic"), f.Name("quorum"), f.Name(strings.Repeat("long", 60))
		derived := classic + ".group"
		f.Track(derived)
		names = []string{classic, quorum, unused, derived}
		declare := func(q string, args amqp.Table) {
			if _, err := ch.QueueDeclare(q, true, false, false, false, args); err != nil {
				t.Fatalf("declare queue %q: %v", q, err)
			}
		}
		declare(classic, nil)
		declare(classic+".dlq", nil)
		declare(quorum, amqp.Table{"x-queue-type": "quorum"})
		declare(quorum+".dlq", amqp.Table{"x-queue-type": "quorum"})
		declare(derived, nil)
		declare(derived+".dlq", nil)
		for _, ex := range []string{classic, classic + ".dlx", quorum + ".dlx"} {
			if err := ch.ExchangeDeclare(ex, "topic", true, false, false, false, nil); err != nil {
				t.Fatalf("declare exchange %q: %v", ex, err)
			}
		}
		publishConfirmed(t, inner, classic, 10, []byte("left behind"))
		publishConfirmed(t, inner, quorum, 10, []byte("left behind"))
	})
	if !ok {
		t.Fatal("the inner test failed: its cleanup reported an error or setup broke")
	}
	if !inner.IsClosed() {
		t.Error("the connection from Dial is still open after the test")
	}
	for _, n := range names {
		for _, suffix := range cleanupSuffixes {
			for _, kind := range []string{"queue", "exchange"} {
				if exists(t, check, kind, n+suffix) {
					t.Errorf("%s %q survived cleanup", kind, n+suffix)
				}
			}
		}
	}
}
