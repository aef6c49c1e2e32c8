package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// Exit statuses of run.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
	exitDrift = 3
)

// usageError is bad input: an unknown command or flag, a filter or time
// that does not parse, a missing broker configuration. run reports it with
// exit status 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// errDrift is returned by topics when live topics differ from their specs.
var errDrift = errors.New("topics differ from their specs")

const usageText = `usage: evctl <command> [flags]

commands:
  dlq list       dead-letter topics/queues with counts, oldest and newest, grouped by error
  dlq show       dead letters decoded to JSON, with their x-dlq-* headers
  dlq redrive    put dead letters back on their original topic (queue on RabbitMQ)
  tail TOPIC     follow a topic, decoded, without joining a consumer group
  topics         ensure the platform topics, report drift and consumer lag

Run "evctl <command> -h" for the flags of a command.
`

// run is evctl: it parses args, runs the command and returns the exit
// status. Output goes to stdout; errors and progress to stderr.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return runWith(ctx, args, &env{stdout: stdout, stderr: stderr, now: time.Now})
}

// env is what a command writes to and depends on; tests fill faults.
type env struct {
	stdout, stderr io.Writer
	now            func() time.Time
	faults         faults
}

// faults lets tests stop a redrive at a chosen point, as a crash would.
type faults struct {
	// afterPublish, if set, is called once a message's republish is
	// confirmed and before its progress is recorded (Kafka commit,
	// RabbitMQ ack); afterCommit once it is recorded. n counts the
	// messages republished so far in this run, from 1. A non-nil error
	// aborts the redrive at once, as a crash at that point would.
	afterPublish func(n int) error
	afterCommit  func(n int) error
}

func runWith(ctx context.Context, args []string, e *env) int {
	stderr := e.stderr
	err := dispatch(ctx, args, e)
	var ue *usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "evctl: %v\n", err)
		fmt.Fprintln(stderr, `run "evctl help" for usage`)
		return exitUsage
	case errors.Is(err, errDrift):
		fmt.Fprintf(stderr, "evctl: %v\n", err)
		return exitDrift
	default:
		fmt.Fprintf(stderr, "evctl: %v\n", err)
		return exitFail
	}
}

func dispatch(ctx context.Context, args []string, e *env) error {
	if len(args) == 0 {
		fmt.Fprint(e.stderr, usageText)
		return usagef("no command given")
	}
	switch args[0] {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(e.stdout, usageText)
		return nil
	case "dlq":
		if len(args) < 2 {
			return usagef("dlq needs a subcommand: list, show or redrive")
		}
		switch args[1] {
		case "list":
			return cmdList(ctx, args[2:], e)
		case "show":
			return cmdShow(ctx, args[2:], e)
		case "redrive":
			return cmdRedrive(ctx, args[2:], e)
		}
		return usagef("unknown dlq subcommand %q: want list, show or redrive", args[1])
	case "tail":
		return cmdTail(ctx, args[1:], e)
	case "topics":
		return cmdTopics(ctx, args[1:], e)
	}
	return usagef("unknown command %q: want dlq, tail or topics", strings.Join(args[:1], ""))
}
