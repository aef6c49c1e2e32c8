package platform

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/examples/internal/healthsvc"
	"github.com/cosmic-horizons/events/examples/internal/opsview"
)

// Service is one reference service as a program: Start subscribes and
// starts its work on p and returns its HTTP API and a stop function.
type Service struct {
	// Name of the service, for logs and the consumer group.
	Name string
	// Flags registers the service's own flags (optional).
	Flags func(fs *flag.FlagSet)
	// Start starts the service. stop is called once on shutdown, before
	// the platform closes, with a context bounding the drain.
	Start func(ctx context.Context, p *Platform, log *slog.Logger) (api http.Handler, stop func(context.Context) error, err error)
	// Help is printed by --help (Help.Name defaults to Name); Main adds
	// the endpoints every program serves (/signals).
	Help Help
	// Options, if set, adjusts the platform's options once the flags are
	// parsed (the health service's lag groups).
	Options func(o *Options) error
}

// FaultFileEnv names an environment variable for fault-injection tests
// (scripts/alerts-e2e.sh): when it names a file, the first attempt of
// every message this process handles fails while that file exists (the
// retry then succeeds, so nothing is lost), which raises the health
// service's error-rate alert. Never set it in production.
const FaultFileEnv = "EVENTS_FAULT_FILE"

// errInjected is the error of an attempt failed by FaultFileEnv.
var errInjected = errors.New("fault injected: " + FaultFileEnv + " names a file that exists")

// faultHook fails first attempts while path exists.
func faultHook(path string) broker.AttemptMiddleware {
	return func(next broker.Handler) broker.Handler {
		return func(ctx context.Context, m *broker.Message) error {
			if m.Delivery.Attempt <= 1 {
				if _, err := os.Stat(path); err == nil {
					return errInjected
				}
			}
			return next(ctx, m)
		}
	}
}

// Main runs svc as a process: parses args (the platform flags, --http and
// the service's own), opens the platform, starts the service, serves its API
// (plus GET /signals: its consumers' handler signals, see
// healthsvc.SignalsHandler) and stops cleanly on SIGINT/SIGTERM. It returns
// the process exit code.
func Main(svc Service, args []string) int {
	fs := flag.NewFlagSet(svc.Name, flag.ContinueOnError)
	var opts Options
	opts.RegisterFlags(fs)
	addr := fs.String("http", "127.0.0.1:0", "address of the service's HTTP API")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	if svc.Flags != nil {
		svc.Flags(fs)
	}
	h := svc.Help
	if h.Name == "" {
		h.Name = svc.Name
	}
	h.Serves = append(h.Serves[:len(h.Serves):len(h.Serves)],
		"GET "+healthsvc.SignalsPath+"?window=1m  this process's consumers: handler attempts, failures, dead letters, P50/P99 (JSON, read by the health service)",
		"GET "+opsview.Path+"  the operator view of this process: publish/consume rate per topic, lag, handler P50/P99, retries, dead letters, brokers (charts; series at "+opsview.Path+"/api/series)")
	fs.Usage = Usage(fs, h)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintf(os.Stderr, "%s: --log-level: %v\n", svc.Name, err)
		return 2
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})).With("service", svc.Name)
	opts.Logger, opts.Source = log, "urn:cosmic-horizons:"+svc.Name
	if svc.Options != nil {
		if err := svc.Options(&opts); err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", svc.Name, err)
			return 2
		}
	}
	if f := os.Getenv(FaultFileEnv); f != "" {
		log.Warn("fault injection on: first handler attempts fail while the file exists", "env", FaultFileEnv, "file", f)
		opts.Hooks = append(opts.Hooks, faultHook(f))
	}
	if err := serve(svc, opts, *addr, log); err != nil {
		log.Error("stopped", "error", err)
		return 1
	}
	return 0
}

func serve(svc Service, opts Options, addr string, log *slog.Logger) error {
	ctx, stopSignals := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stopSignals()
	p, err := Open(ctx, opts)
	if err != nil {
		return err
	}
	defer p.Close()
	if p.Embedded != nil {
		log.Warn("no --kafka-brokers: running on a private embedded Kafka cluster that other processes can join with --kafka-brokers",
			"addrs", strings.Join(p.KafkaAddrs, ","))
	}
	api, stop, err := svc.Start(ctx, p, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		_ = stop(context.Background())
		return err
	}
	ops, err := opsview.New(opsview.Config{Collector: p.Ops, Checkers: p.Health, Logger: log})
	if err != nil {
		_ = stop(context.Background())
		return err
	}
	opsCtx, stopOps := context.WithCancel(ctx)
	opsDone := make(chan struct{})
	go func() { defer close(opsDone); _ = ops.Run(opsCtx) }()
	defer func() { stopOps(); <-opsDone }()
	log.Info("serving", "http", "http://"+ln.Addr().String(), "kafka", strings.Join(p.KafkaAddrs, ","), "realtime", p.RealtimeDesc)
	srv := &http.Server{Handler: withSignals(p, ops, api), ReadHeaderTimeout: 5 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx)
	if serr := stop(sctx); serr != nil {
		err = errors.Join(err, serr)
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// withSignals serves api, at healthsvc.SignalsPath the handler signals
// of p's consumers, for a health service in another process
// (healthsvc.Remote), and at /ops the operator view of this process.
func withSignals(p *Platform, ops *opsview.View, api http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle(opsview.Path, ops.Handler())
	mux.Handle(opsview.Path+"/", ops.Handler())
	mux.Handle(healthsvc.SignalsPath, healthsvc.SignalsHandler(healthsvc.WithInFlight(p.Signals, p.Health, 2*time.Second)))
	mux.Handle("/", api)
	return mux
}
