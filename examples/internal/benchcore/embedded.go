package benchcore

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

	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// ServeKafkaFlag is the command-line flag with which eventbench runs as the
// child process of an embedded Kafka cluster (see StartKafka).
const ServeKafkaFlag = "-serve-kafka"

// brokersPrefix starts the line on which a child announces its brokers.
const brokersPrefix = "brokers "

// ServeKafka runs an in-process Kafka cluster (kafkatest, 3 brokers on
// loopback), writes "brokers host:port,host:port,…" on out, and serves
// until in reaches its end (the parent closed the pipe or died), then
// closes the cluster.
func ServeKafka(in io.Reader, out io.Writer) error {
	c, err := kafkatest.Start()
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

// Usage is the CPU time and peak memory of a process.
type Usage struct {
	CPU     time.Duration
	PeakRSS int64 // bytes
}

// Kafka is an embedded Kafka cluster started for one run.
type Kafka struct {
	// Brokers are the cluster's addresses.
	Brokers []string

	inproc *kafkatest.Cluster
	cmd    *exec.Cmd
	stdin  io.WriteCloser
}

// StartKafka starts a fresh embedded cluster: in a child process running
// exe with ServeKafkaFlag when exe is not empty (so that the CPU time and
// memory measured for the run are the client's alone, and the broker's are
// reported apart), else in this process.
func StartKafka(ctx context.Context, exe string) (*Kafka, error) {
	if exe == "" {
		c, err := kafkatest.Start()
		if err != nil {
			return nil, err
		}
		return &Kafka{Brokers: c.Addrs(), inproc: c}, nil
	}
	cmd := exec.Command(exe, ServeKafkaFlag)
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
		return nil, fmt.Errorf("benchcore: start embedded Kafka: %w", err)
	}
	k := &Kafka{cmd: cmd, stdin: stdin}
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
			_, _ = k.Close()
			return nil, fmt.Errorf("benchcore: embedded Kafka did not start (it said %q)", strings.TrimSpace(s))
		}
		k.Brokers = strings.Split(strings.TrimSpace(strings.TrimPrefix(s, brokersPrefix)), ",")
		return k, nil
	case <-t.C:
		_, _ = k.Close()
		return nil, errors.New("benchcore: embedded Kafka did not start within 30s")
	case <-ctx.Done():
		_, _ = k.Close()
		return nil, ctx.Err()
	}
}

// Close stops the cluster and returns the child process's usage over its
// life (zero for an in-process cluster).
func (k *Kafka) Close() (Usage, error) {
	if k.inproc != nil {
		k.inproc.Close()
		return Usage{}, nil
	}
	_ = k.stdin.Close()
	done := make(chan error, 1)
	go func() { done <- k.cmd.Wait() }()
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	var err error
	select {
	case err = <-done:
	case <-t.C:
		_ = k.cmd.Process.Kill()
		err = <-done
	}
	var u Usage
	if ru, ok := k.cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u = Usage{CPU: time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), PeakRSS: ru.Maxrss * 1024}
	}
	return u, err
}
