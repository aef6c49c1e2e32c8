package benchcore

import (
	"context"
	"fmt"
	"io"

	"github.com/cosmic-horizons/events/testkit/kafkatest"
)

// ServeKafkaFlag is the command-line flag with which eventbench runs as the
// child process of an embedded Kafka cluster (see StartKafka).
const ServeKafkaFlag = "-serve-kafka"

// ServeKafka runs an in-process Kafka cluster and serves it on in and out
// (kafkatest.Serve).
func ServeKafka(in io.Reader, out io.Writer) error { return kafkatest.Serve(in, out) }

// Usage is the CPU time and peak memory of a process.
type Usage = kafkatest.Usage

// Kafka is an embedded Kafka cluster started for one run.
type Kafka struct {
	// Brokers are the cluster's addresses.
	Brokers []string

	inproc *kafkatest.Cluster
	proc   *kafkatest.Process
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
	p, err := kafkatest.StartProcess(ctx, exe, ServeKafkaFlag)
	if err != nil {
		return nil, fmt.Errorf("benchcore: embedded Kafka: %w", err)
	}
	return &Kafka{Brokers: p.Brokers, proc: p}, nil
}

// Close stops the cluster and returns the child process's usage over its
// life (zero for an in-process cluster).
func (k *Kafka) Close() (Usage, error) {
	if k.inproc != nil {
		k.inproc.Close()
		return Usage{}, nil
	}
	return k.proc.Close()
}
