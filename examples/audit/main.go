// Command audit runs the ComplianceAuditor: it consumes every platform topic
// and appends each event to a tamper-evident trail (daily append-only
// segments, SHA-256 chained, fsynced before the offset is committed). It
// serves GET /audit?job_id=… and GET /audit/verify.
//
//	go run ./examples/audit --kafka-brokers 127.0.0.1:9092 --dir /var/lib/audit --http :8083
//	go run ./examples/audit verify --dir /var/lib/audit     # check the whole chain; exit 1 naming the first broken record
//
// See docs/running.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/cosmic-horizons/events/broker"
	"github.com/cosmic-horizons/events/examples/internal/auditsvc"
	"github.com/cosmic-horizons/events/examples/internal/platform"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "verify" {
		os.Exit(verify(os.Args[2:]))
	}
	var (
		dir       string
		group     string
		retention time.Duration
	)
	os.Exit(platform.Main(platform.Service{
		Name: "audit",
		Help: platform.Help{
			Doc: `runs the ComplianceAuditor: it consumes every platform topic from the
durable path (Kafka) and appends each event to a tamper-evident trail in --dir
(daily append-only segments, each record chained to the previous one by
SHA-256, fsynced before its offset is committed). "audit verify --dir D"
checks a trail offline.`,
			Serves: []string{
				"GET /audit?job_id=…   the recorded events of one job (JSON)",
				"GET /audit/verify     verify the whole chain (JSON; 409 naming the first broken record)",
				"GET /audit/stats      records, segments, events consumed (JSON)",
			},
			Examples: []string{
				"go run ./examples/audit --kafka-brokers 127.0.0.1:9092 --http 127.0.0.1:8083 --dir ./audit-trail",
				"go run ./examples/audit verify --dir ./audit-trail   # exit 1 naming the first broken record",
			},
		},
		Flags: func(fs *flag.FlagSet) {
			fs.StringVar(&dir, "dir", "audit-trail", "directory of the trail")
			fs.StringVar(&group, "group", "compliance-auditor", "consumer group")
			fs.DurationVar(&retention, "retention", 90*24*time.Hour, "age after which whole daily segments are removed")
		},
		Start: func(ctx context.Context, p *platform.Platform, log *slog.Logger) (http.Handler, func(context.Context) error, error) {
			svc, err := auditsvc.New(auditsvc.Config{Dir: dir, Bus: p.Durable, Retention: retention, Logger: log})
			if err != nil {
				return nil, nil, err
			}
			cs, err := svc.Subscribe(ctx, p.DurableBackend, group, 8)
			if err != nil {
				_ = svc.Close()
				return nil, nil, err
			}
			rctx, stopRetention := context.WithCancel(ctx)
			go func() { _ = svc.RunRetention(rctx, time.Hour) }()
			return svc.HTTPHandler(), func(context.Context) error {
				stopRetention()
				// Consumers first: the handler needs the trail to ack.
				return errors.Join(broker.CloseAll(cs...), svc.Close())
			}, nil
		},
	}, os.Args[1:]))
}

// verify is the `audit verify` subcommand.
func verify(args []string) int {
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	dir := fs.String("dir", "audit-trail", "directory of the trail")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `audit verify: checks a whole audit trail offline: every record's
SHA-256 chain link, from the retained anchor to the last record. Exit 0 when
the chain holds, 1 naming the first broken record.

Usage:
  go run ./examples/audit verify --dir ./audit-trail

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := auditsvc.VerifyCommand(context.Background(), *dir, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "audit verify:", err)
		return 1
	}
	return 0
}
