package programs_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// build builds every program of examples/, once for all the tests, into a
// directory whose path contains "go-build", as `go run` does, so that a
// usage line printing os.Args[0] would show.
func build(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		tmp, err := os.MkdirTemp("", "programs-test-")
		if err != nil {
			buildErr = err
			return
		}
		buildDir = filepath.Join(tmp, "go-build0001", "exe")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, "go", "build", "-o", buildDir+"/", "github.com/cosmic-horizons/events/examples/...")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildDir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(filepath.Dir(filepath.Dir(buildDir)))
	}
	os.Exit(code)
}

// TestHelp: every program's --help exits 0 and says what the program does,
// how it is run, with examples and its flags, under its own name.
func TestHelp(t *testing.T) {
	dir := build(t)
	for prog, purpose := range map[string]string{
		"demo":          "whole Cosmic Horizons event platform in one process",
		"orchestrator":  "JobOrchestratorService",
		"metrics":       "MetricsService",
		"audit":         "ComplianceAuditor",
		"health":        "SystemHealthService",
		"notifications": "NotificationService",
		"bench":         "load tool",
		"catalog":       "tour of the event catalogue",
		"devkafka":      "development Kafka cluster",
		"webhook":       "webhook receiver",
	} {
		t.Run(prog, func(t *testing.T) {
			var out bytes.Buffer
			cmd := exec.Command(filepath.Join(dir, prog), "--help")
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				t.Fatalf("%s --help: %v\n%s", prog, err, out.String())
			}
			got := strings.Join(strings.Fields(out.String()), " ")
			for _, want := range []string{purpose, "Usage:", "go run ./examples/" + prog, "Examples:"} {
				if !strings.Contains(got, want) {
					t.Errorf("%s --help lacks %q:\n%s", prog, want, out.String())
				}
			}
			if strings.Contains(got, "go-build") {
				t.Errorf("%s --help names the build cache:\n%s", prog, out.String())
			}
		})
	}
}

// TestDemoOutsideATerminal runs the demo with every job failing (on
// purpose) and debug logs, its output going to pipes: it says what it
// starts before the jobs run, its progress has no carriage return or
// escape, and the simulated failures are logged as simulated, never at
// ERROR.
func TestDemoOutsideATerminal(t *testing.T) {
	dir := build(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "demo"), "--jobs", "6", "--rate", "0", "--speed", "0", "--failure-ratio", "1", "--log-level", "debug")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("demo: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	out, logs := stdout.String(), stderr.String()
	for _, want := range []string{"starting the embedded Kafka cluster", "starting the metrics service", "submitting 6 jobs", "6 failed", "result:                 ok"} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	if strings.Index(out, "starting the job orchestrator") > strings.Index(out, "submitting 6 jobs") {
		t.Errorf("the start steps come after the run began:\n%s", out)
	}
	if strings.ContainsAny(out+logs, "\r\x1b") {
		t.Errorf("output outside a terminal has a carriage return or an escape")
	}
	if n := strings.Count(logs, "simulated job failure"); n != 6 {
		t.Errorf("%d logs of a simulated job failure, want 6:\n%s", n, logs)
	}
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, "level=ERROR") {
			t.Errorf("logged at ERROR: %s", l)
		}
	}
}
