// Command webhook is a small webhook receiver for trying the notification
// service's webhook channel: it accepts every POST, logs it, counts it (and
// the distinct Idempotency-Keys, since the sender retries and a retried
// notification carries the same key), keeps the last ones, and serves the
// counts:
//
//	go run ./examples/webhook --http 127.0.0.1:9000
//	go run ./examples/notifications --webhook-url http://127.0.0.1:9000/hook …
//	curl -s 127.0.0.1:9000/count
//
// It answers 204 to a POST, so the sender counts it delivered. It is a
// development tool, not a production endpoint.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cosmic-horizons/events/examples/internal/platform"
)

var help = platform.Help{
	Name: "webhook",
	Doc: `is a small webhook receiver for the notification service's webhook
channel: it accepts every POST (any path), logs it, counts it and the distinct
Idempotency-Keys (a retried notification carries the same key), keeps the
last --keep requests, and answers 204 so the sender counts it delivered. A
development tool, not a production endpoint.`,
	Serves: []string{
		"POST /…          any path: receive a notification (204)",
		`GET /count       {"received": N, "distinct": M} (JSON)`,
		"GET /received    the last --keep requests: time, path, Idempotency-Key, body (JSON)",
	},
	Examples: []string{
		"go run ./examples/webhook --http 127.0.0.1:9000",
		"go run ./examples/notifications --webhook-url http://127.0.0.1:9000/hook --http 127.0.0.1:8080",
		"curl -s 127.0.0.1:9000/count",
	},
}

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		fmt.Fprintln(os.Stderr, "webhook:", err)
		os.Exit(1)
	}
}

func run(args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("http", "127.0.0.1:9000", "address to listen on (127.0.0.1:0: a free port, logged)")
	keep := fs.Int("keep", 1000, "requests kept for GET /received")
	maxBody := fs.Int64("max-body", 1<<20, "largest request body accepted, bytes")
	quiet := fs.Bool("quiet", false, "do not log each request")
	fs.Usage = platform.Usage(fs, help)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *keep < 0 || *maxBody < 1 {
		return fmt.Errorf("bad flags: need --keep ≥ 0 and --max-body ≥ 1")
	}
	log := slog.New(slog.NewTextHandler(stderr, nil)).With("service", "webhook")
	if *quiet {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	rx := NewReceiver(*keep, *maxBody, log)
	srv := &http.Server{Handler: rx, ReadHeaderTimeout: 5 * time.Second}
	// Logged whether --quiet or not: scripts read the address from it.
	slog.New(slog.NewTextHandler(stderr, nil)).Info("serving", "service", "webhook", "http", "http://"+ln.Addr().String())
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}
