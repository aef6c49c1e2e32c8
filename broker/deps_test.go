package broker_test

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestContractNeedsOnlyTheStandardLibrary keeps the contract light for
// every backend, ours and third parties': the broker package, the consumer
// runtime and the in-memory backend import nothing outside the standard
// library and the contract itself (no Avro, no OpenTelemetry).
func TestContractNeedsOnlyTheStandardLibrary(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no go command on PATH")
		}
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(gobin, "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}",
		".", "./dispatch", "./memory").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, p := range strings.Fields(string(out)) {
		if !strings.HasPrefix(p, "github.com/cosmic-horizons/events/broker") {
			t.Errorf("the contract depends on %s", p)
		}
	}
}
