package rabbittest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// noDocker is a docker whose CLI does not exist, with DOCKER_HOST set so the
// cheap check passes and the CLI is really looked for.
func noDocker() docker {
	d := defaultDocker()
	d.bin = "rabbittest-no-such-docker"
	d.getenv = mapEnv(map[string]string{"DOCKER_HOST": "unix:///nonexistent.sock"})
	return d
}

// TestURLReturnsAWorkingBroker: whatever source URL picks, the broker it
// returns accepts a connection, a channel and a queue declaration.
func TestURLReturnsAWorkingBroker(t *testing.T) {
	u := URL(t)
	conn := mustDial(t, u, amqp.Config{})
	ch := mustChannel(t, conn)
	if _, err := ch.QueueDeclare("", false, true, true, false, nil); err != nil {
		t.Fatalf("declare server-named queue: %v", err)
	}
}

// TestLocatorPrefersAMQPURL: a working AMQP_URL wins over the local broker.
func TestLocatorPrefersAMQPURL(t *testing.T) {
	base := URL(t)
	l := locator{
		getenv:   mapEnv(map[string]string{EnvURL: base}),
		localURL: "amqp://guest:guest@" + closedAddr(t) + "/",
		docker:   noDocker(),
	}
	r := runRec(t, func(tb testing.TB) {
		if got := l.find(tb); got != base {
			tb.Errorf("find = %q, want AMQP_URL %q", got, base)
		}
	})
	if r.skipped || r.failed {
		t.Fatalf("skipped=%v failed=%v: %s", r.skipped, r.failed, r.msg)
	}
}

// TestLocatorDeadAMQPURLFails: an AMQP_URL that does not answer fails the
// test even outside CI (it names the broker the caller wants), and the
// message hides the password.
func TestLocatorDeadAMQPURLFails(t *testing.T) {
	l := locator{
		getenv:   mapEnv(map[string]string{EnvURL: "amqp://user:s3cret@" + closedAddr(t) + "/"}),
		localURL: LocalURL,
		docker:   noDocker(),
	}
	r := runRec(t, func(tb testing.TB) { l.find(tb) })
	if !r.failed || r.skipped {
		t.Fatalf("want a failure, got skipped=%v failed=%v: %s", r.skipped, r.failed, r.msg)
	}
	if !strings.Contains(r.msg, EnvURL) || strings.Contains(r.msg, "s3cret") {
		t.Fatalf("message must name %s and hide the password: %s", EnvURL, r.msg)
	}
}

// TestLocatorNoBroker: with no AMQP_URL, no local broker and no Docker, the
// test is skipped with instructions, or failed when CI is set; either way
// within a second (the Docker check must not hang).
func TestLocatorNoBroker(t *testing.T) {
	realDockerNoEngine := defaultDocker()
	realDockerNoEngine.getenv = mapEnv(nil) // no DOCKER_HOST, no HOME contexts
	realDockerNoEngine.socket = filepath.Join(t.TempDir(), "docker.sock")
	for _, tc := range []struct {
		name     string
		env      map[string]string
		docker   docker
		wantSkip bool
	}{
		{"local dev skips", nil, noDocker(), true},
		{"CI fails", map[string]string{EnvCI: "true"}, noDocker(), false},
		{"no engine configured skips", nil, realDockerNoEngine, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := locator{getenv: mapEnv(tc.env), localURL: "amqp://guest:guest@" + closedAddr(t) + "/", docker: tc.docker}
			start := time.Now()
			r := runRec(t, func(tb testing.TB) { l.find(tb) })
			if elapsed := time.Since(start); elapsed > time.Second {
				t.Errorf("took %v, want well under a second", elapsed)
			}
			if r.skipped != tc.wantSkip || r.failed == tc.wantSkip {
				t.Fatalf("skipped=%v failed=%v, want skip=%v: %s", r.skipped, r.failed, tc.wantSkip, r.msg)
			}
			for _, want := range []string{EnvURL, "install RabbitMQ", "Docker"} {
				if !strings.Contains(r.msg, want) {
					t.Errorf("message lacks %q: %s", want, r.msg)
				}
			}
		})
	}
}

// TestDockerCheckOnThisMachine: the real Docker check answers within a
// second when there is no engine (the usual case without Docker).
func TestDockerCheckOnThisMachine(t *testing.T) {
	start := time.Now()
	err := defaultDocker().engineReachable(context.Background())
	elapsed := time.Since(start)
	if err == nil {
		t.Logf("a Docker engine is reachable here (checked in %v)", elapsed)
		return
	}
	t.Logf("no Docker engine (%v), decided in %v", err, elapsed)
	if elapsed > time.Second {
		t.Fatalf("deciding there is no engine took %v, want < 1s", elapsed)
	}
}

// TestDockerCLIWithoutEngine: with the docker CLI installed and configured
// (DOCKER_HOST set) but no engine behind it, the check fails within a second.
func TestDockerCLIWithoutEngine(t *testing.T) {
	d := defaultDocker()
	if _, err := exec.LookPath(d.bin); err != nil {
		t.Skip("no docker CLI installed")
	}
	t.Setenv("DOCKER_HOST", "unix://"+filepath.Join(t.TempDir(), "docker.sock"))
	start := time.Now()
	err := d.engineReachable(context.Background())
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("an engine was found behind a socket that does not exist")
	}
	if elapsed > time.Second {
		t.Fatalf("took %v, want < 1s", elapsed)
	}
	t.Logf("decided in %v: %v", elapsed, err)
}

// TestDockerCheckDoesNotHang: a docker CLI that never answers (an engine
// behind a black-holed DOCKER_HOST), even one whose child keeps the output
// pipes open, is abandoned after the probe timeout.
func TestDockerCheckDoesNotHang(t *testing.T) {
	for name, script := range map[string]string{
		"exec sleep":  "#!/bin/sh\nexec sleep 30\n",
		"child sleep": "#!/bin/sh\nsleep 30\necho 27.0.0\n",
	} {
		t.Run(name, func(t *testing.T) {
			bin := filepath.Join(t.TempDir(), "docker")
			if err := os.WriteFile(bin, []byte(script), 0o755); err != nil {
				t.Fatal(err)
			}
			d := defaultDocker()
			d.bin = bin
			d.getenv = mapEnv(map[string]string{"DOCKER_HOST": "tcp://10.255.255.1:2375"})
			d.probeTimeout = 300 * time.Millisecond
			start := time.Now()
			err := d.engineReachable(context.Background())
			elapsed := time.Since(start)
			if err == nil {
				t.Fatal("a hung docker CLI was taken for a reachable engine")
			}
			if elapsed > 2*time.Second {
				t.Fatalf("gave up after %v, want about the 300ms probe timeout", elapsed)
			}
			t.Logf("gave up after %v: %v", elapsed, err)
		})
	}
}

func TestParseDockerPort(t *testing.T) {
	for _, tc := range []struct {
		out, dockerHost, want string
		wantErr               bool
	}{
		{out: "0.0.0.0:49153\n[::]:49153\n", want: "127.0.0.1:49153"},
		{out: "[::]:32768\n", want: "127.0.0.1:32768"},
		{out: "127.0.0.1:40000\n", want: "127.0.0.1:40000"},
		{out: "0.0.0.0:49153\n", dockerHost: "tcp://192.168.99.100:2376", want: "192.168.99.100:49153"},
		{out: "0.0.0.0:49153\n", dockerHost: "unix:///var/run/docker.sock", want: "127.0.0.1:49153"},
		{out: "", wantErr: true},
		{out: "garbage", wantErr: true},
	} {
		got, err := parseDockerPort(tc.out, tc.dockerHost)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseDockerPort(%q, %q) = %q, %v; want %q, err=%v", tc.out, tc.dockerHost, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestRedact(t *testing.T) {
	got := redact("amqp://user:p%40ss@host:5672/vh")
	if strings.Contains(got, "p%40ss") || strings.Contains(got, "p@ss") || !strings.Contains(got, "user") {
		t.Fatalf("redact = %q", got)
	}
}
