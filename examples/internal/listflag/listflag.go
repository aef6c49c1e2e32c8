// Package listflag splits the comma-separated lists the example programs
// take in flags and environment variables (broker addresses, node URLs),
// the way the SDK's ConfigFromEnv functions do: " a, ,b " is [a b].
package listflag

import "strings"

// Split splits s at commas, trims the spaces around each item and drops
// the empty ones; "" and " , " give nil.
func Split(s string) []string {
	var out []string
	for _, f := range strings.Split(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
