package kafkatest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// ChildEnv is the environment variable that makes ServeIfChild serve a
// cluster: StartProcess sets it for the child it starts.
const ChildEnv = "KAFKATEST_SERVE"

// brokersPrefix starts the line on which a child announces its brokers.
const brokersPrefix = "brokers "

// Serve runs a cluster in this process (Start with opts), writes
// "brokers host:port,host:port,…" and a newline on out, and serves until
// in reaches its end (the parent closed the pipe or died); then it closes
// the cluster.
func Serve(in io.Reader, out io.Writer, opts ...Option) error {
	c, err := Start(opts...)
	if err != nil {
		return err
	}
	defer c.Close()
	if _, err := fmt.Fprintf(out, "%s%s\n", brokersPrefix, strings.Join(c.Addrs(), ",")); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, in)
	return nil
}

// ServeIfChild serves a cluster on stdin and stdout and exits when the
// process was started by StartProcess (ChildEnv set); otherwise it
// returns at once. Call it first in main, or in TestMain of a test binary
// that starts itself as a cluster process:
//
//	func TestMain(m *testing.M) {
//		kafkatest.ServeIfChild()
//		os.Exit(m.Run())
//	}
func ServeIfChild() {
	if os.Getenv(ChildEnv) == "" {
		return
	}
	if err := Serve(os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "kafkatest:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Usage is the CPU time and peak memory of a process.
type Usage struct {
	CPU     time.Duration
	PeakRSS int64 // bytes
}

// Process is a cluster running in a child process: the CPU time and
// memory this process uses are then the client's alone, and the broker's
// come back from Close.
type Process struct {
	// Brokers are the cluster's bootstrap addresses.
	Brokers []string

	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// StartProcess starts exe (which calls ServeIfChild, e.g. os.Args[0] of a
// test binary whose TestMain does) with ChildEnv set and args, and returns
// once the child announced its brokers, within 30 s or ctx.
func StartProcess(ctx context.Context, exe string, args ...string) (*Process, error) {
	cmd := exec.Command(exe, args...)
	cmd.Env = append(os.Environ(), ChildEnv+"=1")
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("kafkatest: start the cluster process: %w", err)
	}
	p := &Process{cmd: cmd, stdin: stdin}
	line := make(chan string, 1)
	go func() {
		r := bufio.NewReader(stdout)
		s, _ := r.ReadString('\n')
		line <- s
		_, _ = io.Copy(io.Discard, r)
	}()
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case s := <-line:
		if !strings.HasPrefix(s, brokersPrefix) {
			_, _ = p.Close()
			return nil, fmt.Errorf("kafkatest: the cluster process did not start (it said %q)", strings.TrimSpace(s))
		}
		p.Brokers = strings.Split(strings.TrimSpace(strings.TrimPrefix(s, brokersPrefix)), ",")
		return p, nil
	case <-t.C:
		_, _ = p.Close()
		return nil, errors.New("kafkatest: the cluster process did not start within 30s")
	case <-ctx.Done():
		_, _ = p.Close()
		return nil, ctx.Err()
	}
}

// Close stops the child (closing its stdin; killing it after 30 s) and
// returns its usage over its life.
func (p *Process) Close() (Usage, error) {
	_ = p.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	var err error
	select {
	case err = <-done:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		err = <-done
	}
	var u Usage
	if ru, ok := p.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u = Usage{CPU: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), PeakRSS: ru.Maxrss * 1024}
	}
	return u, err
}
