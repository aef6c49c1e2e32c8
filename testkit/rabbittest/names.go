package rabbittest

import (
	"crypto/rand"
	"encoding/hex"
	"strings"
	"sync"
)

// MaxNameLen bounds the length of the names [Fixture.Name] returns, leaving
// room for suffixes up to 55 bytes (".dlq", ".retry.30s", ...) below AMQP's
// 255-byte limit on queue and exchange names.
const MaxNameLen = 200

// cleanupSuffixes are appended to every handed-out name to find the
// companion queues and exchanges that cleanup deletes too.
var cleanupSuffixes = [...]string{"", ".dlq", ".dlx"}

const (
	maxPrefixLen   = 64
	maxTestNameLen = 80
	randomBytes    = 6
)

// nameSet hands out names unique to one test and remembers them for cleanup.
// It is safe for concurrent use.
type nameSet struct {
	test string // sanitized test name fragment

	mu    sync.Mutex
	names []string
}

func newNameSet(testName string) *nameSet {
	frag := sanitize(testName)
	if len(frag) > maxTestNameLen {
		// Keep both ends: the test function and the innermost subtest.
		half := maxTestNameLen / 2
		frag = frag[:half-1] + "-" + frag[len(frag)-half:]
	}
	if frag == "" {
		frag = "test"
	}
	return &nameSet{test: frag}
}

// next returns prefix.test.random, sanitized, and records it.
func (s *nameSet) next(prefix string) string {
	p := sanitize(prefix)
	if len(p) > maxPrefixLen {
		p = p[:maxPrefixLen]
	}
	if p == "" {
		p = "q"
	}
	if strings.HasPrefix(p, "amq.") { // reserved by the broker
		p = "x-" + p
	}
	var b [randomBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	name := p + "." + s.test + "." + hex.EncodeToString(b[:])
	s.mu.Lock()
	s.names = append(s.names, name)
	s.mu.Unlock()
	return name
}

// track records names chosen elsewhere for the same cleanup.
func (s *nameSet) track(names ...string) {
	s.mu.Lock()
	s.names = append(s.names, names...)
	s.mu.Unlock()
}

// all returns every name handed out so far.
func (s *nameSet) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.names...)
}

// sanitize keeps ASCII letters, digits, '_', '-' and '.', turns every other
// byte into '-', and trims separators from both ends, so the result is a
// valid AMQP short string that is also safe in file names and URLs.
func sanitize(s string) string {
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '-', c == '.':
		default:
			b[i] = '-'
		}
	}
	return strings.Trim(string(b), "-.")
}
