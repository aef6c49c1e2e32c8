// Package envlist splits the comma-separated lists of the SDK's
// environment variables and flags (broker addresses, node URLs, queue
// names), so that every one of them reads " a, ,b " the same way.
package envlist

import "strings"

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
