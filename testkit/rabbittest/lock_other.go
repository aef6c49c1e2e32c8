//go:build !unix

package rabbittest

import "time"

// lockCluster is a no-op where flock is unavailable: run cluster tests of
// several packages with -p 1 there.
func lockCluster(string, time.Duration) (func(), error) { return func() {}, nil }
