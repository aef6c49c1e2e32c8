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
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cosmic-horizons/events/examples/internal/devkafka"
)

func main() {
	fs := flag.NewFlagSet("devkafka", flag.ExitOnError)
	brokers := fs.Int("brokers", 3, "number of brokers")
	addrFile := fs.String("addr-file", "", "also write the bootstrap addresses (comma-separated) to this file, once the cluster listens")
	control := fs.String("control", "", "serve a fault-injection API on this address (e.g. 127.0.0.1:18290): POST /brokers/{id}/remove and /brokers/{id}/restore; for tests")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `devkafka runs a development Kafka cluster in this process (real wire
protocol, everything in memory) until interrupted, and prints its bootstrap
addresses for KAFKA_BROKERS.

Usage:
  go run ./examples/devkafka [flags]

Examples:
  go run ./examples/devkafka
  go run ./examples/devkafka --brokers 1 --addr-file /tmp/kafka.addrs
  go run ./examples/devkafka --control 127.0.0.1:18290 &
  curl -X POST http://127.0.0.1:18290/brokers/2/remove   # broker 2 dies
  curl -X POST http://127.0.0.1:18290/brokers/2/restore  # and comes back

Flags:
`)
		fs.PrintDefaults()
	}
	_ = fs.Parse(os.Args[1:])
	if err := run(*brokers, *addrFile, *control); err != nil {
		fmt.Fprintln(os.Stderr, "devkafka:", err)
		os.Exit(1)
	}
}

func run(brokers int, addrFile, control string) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	c, err := devkafka.Start(brokers)
	if err != nil {
		return err
	}
	defer c.Close()
	if control != "" {
		ln, err := net.Listen("tcp", control)
		if err != nil {
			return fmt.Errorf("--control: %w", err)
		}
		srv := &http.Server{Handler: controlAPI(c), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer srv.Close()
		fmt.Fprintf(os.Stderr, "devkafka: fault-injection API on http://%s\n", ln.Addr())
	}
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

// controlAPI is the fault-injection API of --control.
func controlAPI(c *devkafka.Cluster) http.Handler {
	mux := http.NewServeMux()
	op := func(f func(int32) error) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			id, err := strconv.ParseInt(r.PathValue("id"), 10, 32)
			if err != nil {
				http.Error(w, "broker id: want an integer", http.StatusBadRequest)
				return
			}
			if err := f(int32(id)); err != nil {
				http.Error(w, err.Error(), http.StatusConflict)
				return
			}
			w.WriteHeader(http.StatusNoContent)
		}
	}
	mux.HandleFunc("POST /brokers/{id}/remove", op(c.RemoveBroker))
	mux.HandleFunc("POST /brokers/{id}/restore", op(c.RestoreBroker))
	return mux
}
