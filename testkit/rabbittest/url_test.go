package rabbittest

import (
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// noDocker is a docker whose configured engine does not exist: DOCKER_HOST
// names a socket nobody listens on, so the ping really is attempted.
func noDocker() docker {
	d := defaultDocker()
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

// TestDockerEngineMissingBehindSocket: with DOCKER_HOST naming a socket
// nobody serves, the check fails within a second.
func TestDockerEngineMissingBehindSocket(t *testing.T) {
	d := defaultDocker()
	d.getenv = mapEnv(map[string]string{"DOCKER_HOST": "unix://" + filepath.Join(t.TempDir(), "docker.sock")})
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

// TestDockerCheckDoesNotHang: an engine that accepts the connection and
// never answers (a hung daemon) is abandoned after the probe timeout.
func TestDockerCheckDoesNotHang(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // hold it open, say nothing
		}
	}()
	d := defaultDocker()
	d.getenv = mapEnv(map[string]string{"DOCKER_HOST": "tcp://" + ln.Addr().String()})
	d.probeTimeout = 300 * time.Millisecond
	start := time.Now()
	err = d.engineReachable(context.Background())
	elapsed := time.Since(start)
	if err == nil {
		t.Fatal("a silent engine was taken for a reachable one")
	}
	if elapsed > 2*time.Second {
		t.Fatalf("gave up after %v, want about the 300ms probe timeout", elapsed)
	}
	t.Logf("gave up after %v: %v", elapsed, err)
}

func TestDialAddr(t *testing.T) {
	for _, tc := range []struct {
		hostPort, endpoint, want string
		wantErr                  bool
	}{
		{hostPort: "localhost:49153", want: "127.0.0.1:49153"},
		{hostPort: "0.0.0.0:32768", want: "127.0.0.1:32768"},
		{hostPort: "127.0.0.1:40000", want: "127.0.0.1:40000"},
		{hostPort: "10.1.2.3:40000", want: "10.1.2.3:40000"},
		{hostPort: "localhost:49153", endpoint: "tcp://192.168.99.100:2376", want: "192.168.99.100:49153"},
		{hostPort: "localhost:49153", endpoint: "unix:///var/run/docker.sock", want: "127.0.0.1:49153"},
		{hostPort: "", wantErr: true},
		{hostPort: "garbage", wantErr: true},
	} {
		got, err := dialAddr(tc.hostPort, tc.endpoint)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("dialAddr(%q, %q) = %q, %v; want %q, err=%v", tc.hostPort, tc.endpoint, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestRedact(t *testing.T) {
	got := redact("amqp://user:p%40ss@host:5672/vh")
	if strings.Contains(got, "p%40ss") || strings.Contains(got, "p@ss") || !strings.Contains(got, "user") {
		t.Fatalf("redact = %q", got)
	}
}
