package rabbittest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// DockerImage is the image [URL] runs when it falls back to Docker.
const DockerImage = "rabbitmq:3-management"

// docker drives the docker CLI. The fallback uses the CLI rather than
// github.com/ory/dockertest/v3 to keep 27 modules out of the module graph of
// everyone who imports this package (see the package doc).
type docker struct {
	bin    string              // CLI to run
	getenv func(string) string // environment for the cheap checks
	socket string              // the engine's default unix socket

	probeTimeout time.Duration // bound on `docker version`
	pullTimeout  time.Duration // bound on `docker run` (may pull the image)
	bootTimeout  time.Duration // bound on the broker answering after run
}

func defaultDocker() docker {
	return docker{
		bin:          "docker",
		getenv:       os.Getenv,
		socket:       "/var/run/docker.sock",
		probeTimeout: 2 * time.Second,
		pullTimeout:  5 * time.Minute,
		bootTimeout:  2 * time.Minute,
	}
}

// engineConfigured reports, without starting a process, whether a Docker
// engine could be reachable at all: an explicit DOCKER_HOST or
// DOCKER_CONTEXT, the default socket, or a CLI context (Docker Desktop,
// rootless, colima). On a machine without an engine this is the whole
// Docker check and costs a few stat calls.
func (d docker) engineConfigured() error {
	if d.getenv("DOCKER_HOST") != "" || d.getenv("DOCKER_CONTEXT") != "" {
		return nil
	}
	if _, err := os.Stat(d.socket); err == nil {
		return nil
	}
	cfg := d.getenv("DOCKER_CONFIG")
	if cfg == "" && d.getenv("HOME") != "" {
		cfg = filepath.Join(d.getenv("HOME"), ".docker")
	}
	if cfg != "" {
		if entries, err := os.ReadDir(filepath.Join(cfg, "contexts", "meta")); err == nil && len(entries) > 0 {
			return nil
		}
	}
	return fmt.Errorf("no engine configured (DOCKER_HOST and DOCKER_CONTEXT unset, no %s, no docker CLI context)", d.socket)
}

// engineReachable reports whether a Docker engine answers, within
// probeTimeout at worst.
func (d docker) engineReachable(ctx context.Context) error {
	if err := d.engineConfigured(); err != nil {
		return err
	}
	if _, err := exec.LookPath(d.bin); err != nil {
		return fmt.Errorf("docker CLI: %w", err)
	}
	out, err := d.run(ctx, d.probeTimeout, "version", "--format", "{{.Server.Version}}")
	if err != nil {
		return fmt.Errorf("engine does not answer: %w", err)
	}
	if strings.TrimSpace(out) == "" {
		return errors.New("engine does not answer: docker version printed no server version")
	}
	return nil
}

// startRabbit runs a DockerImage container with its ports published and
// waits until the broker answers. stop removes the container; it is non-nil
// as soon as a container exists, even when err is not nil.
func (d docker) startRabbit(ctx context.Context) (brokerURL string, stop func() error, err error) {
	out, err := d.run(ctx, d.pullTimeout, "run", "-d", "--rm", "-P", DockerImage)
	if err != nil {
		return "", nil, fmt.Errorf("start %s container: %w", DockerImage, err)
	}
	fields := strings.Fields(out)
	if len(fields) == 0 {
		return "", nil, fmt.Errorf("start %s container: docker run printed no container id", DockerImage)
	}
	id := fields[len(fields)-1]
	stop = func() error {
		if _, err := d.run(context.Background(), 30*time.Second, "rm", "-f", id); err != nil {
			return fmt.Errorf("remove container %s: %w", id, err)
		}
		return nil
	}
	out, err = d.run(ctx, 30*time.Second, "port", id, "5672/tcp")
	if err != nil {
		return "", stop, fmt.Errorf("container %s: %w", id, err)
	}
	addr, err := parseDockerPort(out, d.getenv("DOCKER_HOST"))
	if err != nil {
		return "", stop, fmt.Errorf("container %s: %w", id, err)
	}
	brokerURL = "amqp://guest:guest@" + addr + "/"
	ctx, cancel := context.WithTimeout(ctx, d.bootTimeout)
	defer cancel()
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	for {
		err := probe(ctx, brokerURL, 2*time.Second)
		if err == nil {
			return brokerURL, stop, nil
		}
		select {
		case <-ctx.Done():
			return "", stop, fmt.Errorf("container %s: broker did not answer within %v: %w", id, d.bootTimeout, err)
		case <-poll.C:
		}
	}
}

// run runs the docker CLI with args, bounded by timeout, and returns stdout.
func (d docker) run(ctx context.Context, timeout time.Duration, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.bin, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	// A killed CLI may leave a child holding the pipes; don't wait for it.
	cmd.WaitDelay = 500 * time.Millisecond
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return "", fmt.Errorf("docker %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return stdout.String(), nil
}

// parseDockerPort turns `docker port ID 5672/tcp` output ("0.0.0.0:49153",
// "[::]:49153", one binding a line) into a host:port to dial. A wildcard
// address means the engine's host: 127.0.0.1, or the host of a tcp://
// DOCKER_HOST.
func parseDockerPort(out, dockerHost string) (string, error) {
	var port string
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		h, p, err := net.SplitHostPort(line)
		if err != nil {
			return "", fmt.Errorf("parse docker port output %q: %w", line, err)
		}
		if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() {
			return net.JoinHostPort(h, p), nil
		}
		if port == "" {
			port = p
		}
	}
	if port == "" {
		return "", fmt.Errorf("docker port printed no binding for 5672/tcp: %q", out)
	}
	host := "127.0.0.1"
	if u, err := url.Parse(dockerHost); err == nil && u.Scheme == "tcp" && u.Hostname() != "" {
		host = u.Hostname()
	}
	return net.JoinHostPort(host, port), nil
}
