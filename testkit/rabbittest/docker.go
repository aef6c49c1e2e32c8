package rabbittest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"time"

	"github.com/ory/dockertest/v3"
	dc "github.com/ory/dockertest/v3/docker"
)

// The image [URL] runs when it falls back to Docker.
const (
	DockerImage = DockerRepository + ":" + DockerTag
	// DockerRepository and DockerTag name DockerImage.
	DockerRepository = "rabbitmq"
	DockerTag        = "3-management"
)

// docker starts throwaway brokers through the Docker engine API, with
// github.com/ory/dockertest/v3.
type docker struct {
	getenv func(string) string // environment for the cheap checks
	socket string              // the engine's default unix socket

	probeTimeout time.Duration // bound on the engine's answer to a ping
	pullTimeout  time.Duration // bound on starting the container (may pull the image)
	bootTimeout  time.Duration // bound on the broker answering after the start
}

func defaultDocker() docker {
	return docker{
		getenv:       os.Getenv,
		socket:       "/var/run/docker.sock",
		probeTimeout: 2 * time.Second,
		pullTimeout:  5 * time.Minute,
		bootTimeout:  2 * time.Minute,
	}
}

// endpoint returns the engine's address as dockertest reads it: DOCKER_HOST,
// else DOCKER_URL, else the default unix socket; an error, without any
// system call beyond a stat, when none is configured. On a machine without
// an engine this is the whole Docker check and costs microseconds.
func (d docker) endpoint() (string, error) {
	for _, name := range []string{"DOCKER_HOST", "DOCKER_URL"} {
		if v := d.getenv(name); v != "" {
			return v, nil
		}
	}
	if _, err := os.Stat(d.socket); err == nil {
		return "unix://" + d.socket, nil
	}
	return "", fmt.Errorf("no engine configured (DOCKER_HOST and DOCKER_URL unset, no %s)", d.socket)
}

// pool connects to the engine and checks that it answers within
// probeTimeout.
func (d docker) pool(ctx context.Context) (*dockertest.Pool, string, error) {
	endpoint, err := d.endpoint()
	if err != nil {
		return nil, "", err
	}
	pool, err := dockertest.NewPool(endpoint)
	if err != nil {
		return nil, "", fmt.Errorf("engine at %s: %w", endpoint, err)
	}
	ctx, cancel := context.WithTimeout(ctx, d.probeTimeout)
	defer cancel()
	if err := pool.Client.PingWithContext(ctx); err != nil {
		return nil, "", fmt.Errorf("engine at %s does not answer: %w", endpoint, err)
	}
	return pool, endpoint, nil
}

// engineReachable reports whether a Docker engine answers, within
// probeTimeout at worst.
func (d docker) engineReachable(ctx context.Context) error {
	_, _, err := d.pool(ctx)
	return err
}

// startRabbit runs a DockerImage container with its ports published and
// waits until the broker answers. stop removes the container; it is non-nil
// as soon as a container exists, even when err is not nil.
func (d docker) startRabbit(ctx context.Context) (brokerURL string, stop func() error, err error) {
	pool, endpoint, err := d.pool(ctx)
	if err != nil {
		return "", nil, err
	}
	// RunWithOptions (pull, create, start) takes no context: bound it
	// here, and remove a container that starts after the caller gave up.
	type started struct {
		r   *dockertest.Resource
		err error
	}
	done := make(chan started, 1)
	go func() {
		r, err := pool.RunWithOptions(&dockertest.RunOptions{Repository: DockerRepository, Tag: DockerTag},
			func(hc *dc.HostConfig) {
				hc.AutoRemove = true
				hc.RestartPolicy = dc.RestartPolicy{Name: "no"}
			})
		done <- started{r, err}
	}()
	runCtx, cancel := context.WithTimeout(ctx, d.pullTimeout)
	defer cancel()
	var res *dockertest.Resource
	select {
	case s := <-done:
		if s.err != nil {
			return "", nil, fmt.Errorf("start %s container: %w", DockerImage, s.err)
		}
		res = s.r
	case <-runCtx.Done():
		go func() {
			if s := <-done; s.err == nil {
				_ = pool.Purge(s.r)
			}
		}()
		return "", nil, fmt.Errorf("start %s container: %w", DockerImage, runCtx.Err())
	}
	id := res.Container.ID
	stop = func() error {
		if err := pool.Purge(res); err != nil {
			return fmt.Errorf("remove container %s: %w", id, err)
		}
		return nil
	}
	addr, err := dialAddr(res.GetHostPort("5672/tcp"), endpoint)
	if err != nil {
		return "", stop, fmt.Errorf("container %s: %w", id, err)
	}
	brokerURL = "amqp://guest:guest@" + addr + "/"
	bootCtx, cancelBoot := context.WithTimeout(ctx, d.bootTimeout)
	defer cancelBoot()
	poll := time.NewTicker(250 * time.Millisecond)
	defer poll.Stop()
	for {
		err := probe(bootCtx, brokerURL, 2*time.Second)
		if err == nil {
			return brokerURL, stop, nil
		}
		select {
		case <-bootCtx.Done():
			return "", stop, fmt.Errorf("container %s: broker did not answer within %v: %w", id, d.bootTimeout, err)
		case <-poll.C:
		}
	}
}

// dialAddr turns the published address dockertest reports for 5672/tcp
// ("localhost:49153" for a wildcard binding) into a host:port to dial: a
// wildcard or local binding means the engine's host, 127.0.0.1 or the host
// of a tcp:// endpoint.
func dialAddr(hostPort, endpoint string) (string, error) {
	if hostPort == "" {
		return "", errors.New("no published port for 5672/tcp")
	}
	h, p, err := net.SplitHostPort(hostPort)
	if err != nil {
		return "", fmt.Errorf("published address %q: %w", hostPort, err)
	}
	if ip := net.ParseIP(h); ip != nil && !ip.IsUnspecified() && !ip.IsLoopback() {
		return hostPort, nil
	}
	host := "127.0.0.1"
	if u, err := url.Parse(endpoint); err == nil && u.Scheme == "tcp" && u.Hostname() != "" {
		host = u.Hostname()
	}
	return net.JoinHostPort(host, p), nil
}
