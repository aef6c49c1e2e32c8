package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/cosmic-horizons/events"
	"github.com/cosmic-horizons/events/examples/internal/audittrail"
	"github.com/cosmic-horizons/events/kafkabus"
	"github.com/cosmic-horizons/events/testkit"
	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// runMainEnv makes the test binary run the audit program itself, so that
// the crash test can start it as a real process and kill it.
const runMainEnv = "AUDIT_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main() // exits
	}
	os.Exit(m.Run())
}

// TestKillNineThenRestart runs the audit program as a process against an
// in-process Kafka cluster, kills it with SIGKILL while events are still
// arriving (no drain, no deferred code, half a record possibly written),
// restarts it on the same directory and consumer group, and checks that
// the trail ends with every published event exactly once and verifies: what
// was recorded but not committed is redelivered and recognised, what was
// committed was on disk.
func TestKillNineThenRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts the audit program twice against a Kafka cluster")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cluster := kafkatest.NewCluster(t, kafkatest.Topics(events.PlatformTopics()...))
	brokers := strings.Join(cluster.Addrs(), ",")
	kb, err := kafkabus.New(ctx, kafkabus.Config{Brokers: cluster.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kb.Close() })
	bus, err := events.NewBus(kb)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()

	// Events of every topic, published in small batches by one goroutine
	// for as long as the test lets it: the audit program is killed while
	// it is still receiving them.
	const total = 1500
	evs := testkit.NewEventBuilder(11).Events(total)
	published := make(chan error, 1)
	resume := make(chan struct{})
	paused := make(chan struct{})
	go func() {
		defer close(published)
		for i := 0; i < total; i += 10 {
			if i == total/2 { // the second half only after the kill
				close(paused)
				select {
				case <-resume:
				case <-ctx.Done():
					published <- ctx.Err()
					return
				}
			}
			if err := bus.Publish(ctx, evs[i:min(i+10, total)]...); err != nil {
				published <- err
				return
			}
		}
	}()

	start := func(name string) *process {
		cmd := exec.CommandContext(ctx, os.Args[0], "--kafka-brokers", brokers, "--dir", dir, "--group", "auditors", "--log-level", "warn")
		cmd.Env = append(os.Environ(), runMainEnv+"=1")
		p := &process{name: name, cmd: cmd, exited: make(chan struct{})}
		cmd.Stdout, cmd.Stderr = &p.out, &p.out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		go func() { p.err = cmd.Wait(); close(p.exited) }()
		t.Cleanup(func() {
			_ = cmd.Process.Kill()
			<-p.exited
			if t.Failed() {
				t.Logf("%s output:\n%s", name, p.out.String())
			}
		})
		return p
	}

	// First run: killed once it has recorded a third of the events.
	first := start("first run")
	testkit.Eventually(ctx, t, "a third of the events in the trail", func() bool { return first.running(t) && countLines(t, dir) >= total/3 })
	if err := first.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := first.wait(ctx); err == nil {
		t.Fatal("the first run exited cleanly; it was meant to be killed")
	}
	atKill := countLines(t, dir)
	select {
	case <-paused:
		close(resume)
	case err := <-published:
		t.Fatalf("publish: %v", err)
	}
	if err := <-published; err != nil {
		t.Fatalf("publish: %v", err)
	}

	// Second run: same directory, same group. It must end with every event
	// exactly once, whatever the first run had written or committed.
	restarted := time.Now()
	second := start("second run")
	testkit.Eventually(ctx, t, "every event in the trail", func() bool { return second.running(t) && countLines(t, dir) >= total })
	caughtUp := time.Since(restarted)
	if err := second.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := second.wait(ctx); err != nil {
		t.Fatalf("the second run did not stop cleanly on SIGTERM: %v", err)
	}
	t.Logf("%d records at the kill, %d events in all; the second run had them all %v after its start", atKill, total, caughtUp.Round(time.Millisecond))

	recs, err := audittrail.ReadDir(ctx, dir)
	if err != nil {
		t.Fatal(err)
	}
	want := make(map[uuid.UUID]bool, total)
	for _, e := range evs {
		want[e.Envelope().EventID] = true
	}
	seen := make(map[uuid.UUID]int, total)
	for i, r := range recs {
		if r.Seq != uint64(i+1) {
			t.Fatalf("record %d has seq %d", i+1, r.Seq)
		}
		if !want[r.EventID] {
			t.Errorf("record %d: event %s was never published", r.Seq, r.EventID)
		}
		seen[r.EventID]++
	}
	for id := range want {
		if seen[id] != 1 {
			t.Errorf("event %s recorded %d times, want once", id, seen[id])
		}
	}
	if code := verify([]string{"--dir", dir}); code != 0 {
		t.Fatalf("audit verify exited %d after the restart", code)
	}
}

// process is the audit program running as a child process.
type process struct {
	name   string
	cmd    *exec.Cmd
	out    bytes.Buffer // written by the process until exited is closed
	exited chan struct{}
	err    error // cmd.Wait's, once exited is closed
}

// running fails the test at once if the process has exited (it was not
// asked to), instead of letting the test wait for what it will never do.
func (p *process) running(t *testing.T) bool {
	t.Helper()
	select {
	case <-p.exited:
		t.Fatalf("the %s exited on its own (%v):\n%s", p.name, p.err, p.out.String())
	default:
	}
	return true
}

// wait waits for the process to exit and returns cmd.Wait's error.
func (p *process) wait(ctx context.Context) error {
	select {
	case <-p.exited:
		return p.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// countLines counts the complete records in the trail's segments; a record
// being written (no newline yet) is not counted.
func countLines(t *testing.T, dir string) int {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "segment-*.jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		n += bytes.Count(b, []byte{'\n'})
	}
	return n
}
