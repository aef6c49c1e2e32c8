// Command devkafka runs a development Kafka cluster on this machine until it
// is interrupted: three brokers (by default) inside this one process,
// speaking the real Kafka wire protocol (franz-go's kfake), on 127.0.0.1.
// It prints the bootstrap addresses, so that the reference programs run as
// separate processes can share one cluster:
//
//	go run ./examples/devkafka --addr-file /tmp/kafka.addrs &
//	export KAFKA_BROKERS=$(cat /tmp/kafka.addrs)
//
// It keeps everything in memory and forgets it when it stops. It is a
// development convenience, not a Kafka to run a platform on.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/cosmic-horizons/events/examples/internal/devkafka"
)

func main() {
	fs := flag.NewFlagSet("devkafka", flag.ExitOnError)
	brokers := fs.Int("brokers", 3, "number of brokers")
	addrFile := fs.String("addr-file", "", "also write the bootstrap addresses (comma-separated) to this file, once the cluster listens")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `devkafka runs a development Kafka cluster in this process (real wire
protocol, everything in memory) until interrupted, and prints its bootstrap
addresses for KAFKA_BROKERS.

Usage:
  go run ./examples/devkafka [flags]

Examples:
  go run ./examples/devkafka
  go run ./examples/devkafka --brokers 1 --addr-file /tmp/kafka.addrs

Flags:
`)
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	if err := run(*brokers, *addrFile); err != nil {
		fmt.Fprintln(os.Stderr, "devkafka:", err)
		os.Exit(1)
	}
}

func run(brokers int, addrFile string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := devkafka.Start(brokers)
	if err != nil {
		return err
	}
	defer c.Close()
	addrs := strings.Join(c.Addrs(), ",")
	if addrFile != "" {
		// Written whole under a temporary name, then renamed: a reader
		// polling for the file never sees half of it.
		tmp := addrFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(addrs+"\n"), 0o644); err != nil {
			return err
		}
		if err := os.Rename(tmp, addrFile); err != nil {
			return err
		}
	}
	fmt.Printf("KAFKA_BROKERS=%s\n", addrs)
	fmt.Fprintln(os.Stderr, "devkafka: serving until interrupted (Ctrl-C)")
	<-ctx.Done()
	return nil
}
