package eventmodels

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Strings of an event end up in log lines, audit records, terminals,
// Kafka keys and AMQP headers. Validate therefore refuses, rather than
// escapes, the characters that would forge or garble them there:
//
//   - Identifiers, names and keys (user_id, job_id, project_id, queue,
//     node, actor, resource.id, label keys, …): no control character at
//     all (C0 including tab and newline, DEL, C1), no format character
//     (bidirectional overrides, zero-width characters) and no line or
//     paragraph separator.
//   - Free text (message, error_message, reason, title, check messages,
//     label values): newline and tab are allowed; every other control
//     character (carriage return, ESC and so ANSI escape sequences, C1) is
//     refused. A producer relaying text it does not control (a process's
//     output, an upstream error) passes it through CleanText first.
//   - Every string is valid UTF-8: JSON would carry invalid bytes as
//     U+FFFD, Avro as they are, and the two encodings would disagree.

// identProblem returns what is wrong with s as an identifier, or "".
func identProblem(s string) string {
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b < 0x20 || b == 0x7f {
				return fmt.Sprintf("must not contain the control character %U (byte %d)", rune(b), i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Sprintf("must be valid UTF-8 (byte %d)", i)
		}
		if unicode.In(r, unicode.Cc, unicode.Cf, unicode.Zl, unicode.Zp) {
			return fmt.Sprintf("must not contain the control or format character %U (byte %d)", r, i)
		}
		i += size
	}
	return ""
}

// textProblem returns what is wrong with s as free text, or "".
func textProblem(s string) string {
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if (b < 0x20 && b != '\n' && b != '\t') || b == 0x7f {
				return fmt.Sprintf("must not contain the control character %U (byte %d); only newline and tab are allowed", rune(b), i)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			return fmt.Sprintf("must be valid UTF-8 (byte %d)", i)
		}
		if unicode.Is(unicode.Cc, r) {
			return fmt.Sprintf("must not contain the control character %U (byte %d); only newline and tab are allowed", r, i)
		}
		i += size
	}
	return ""
}

// CleanText makes s acceptable as free text: it keeps newlines and tabs,
// turns "\r\n" into "\n", writes every other control character as a Go
// escape (`\x1b`, `\r`, `\u009b`), so an ANSI sequence shows as text
// instead of acting on a terminal, and replaces invalid UTF-8 with U+FFFD.
// It does not shorten s: Validate still bounds its length.
func CleanText(s string) string {
	if textProblem(s) == "" {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 16)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b.WriteRune(utf8.RuneError)
		case r == '\r' && strings.HasPrefix(s[i+1:], "\n"):
			// dropped: the "\n" follows
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\n' || r == '\t' || !unicode.Is(unicode.Cc, r):
			b.WriteString(s[i : i+size])
		case r < 0x80:
			fmt.Fprintf(&b, `\x%02x`, r)
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
		i += size
	}
	return b.String()
}
