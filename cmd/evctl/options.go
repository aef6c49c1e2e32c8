package main

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"
)

// Broker kinds of --broker.
const (
	brokerKafka  = "kafka"
	brokerRabbit = "rabbitmq"
)

// listFlag is a repeatable flag whose values may also be comma-separated.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			return errors.New("empty value")
		}
		*l = append(*l, s)
	}
	return nil
}

// options are the flags of every command; each command registers the ones
// it takes.
type options struct {
	broker  string
	brokers listFlag // Kafka bootstrap addresses, overriding KAFKA_BROKERS
	urls    listFlag // AMQP URLs, overriding AMQP_URLS / AMQP_URL
	json    bool

	// Which dead letters.
	dlqs   listFlag // dead-letter topics (Kafka) or queues (RabbitMQ)
	topics listFlag // original topics
	groups listFlag // subscription groups
	filter filter
	limit  int

	// dlq redrive
	dryRun        bool
	progressGroup string

	// tail
	fromBeginning bool
	count         int

	// topics
	ensure bool
}

// newFlags returns a flag set for cmd with the connection and output
// flags every command takes.
func newFlags(cmd string, o *options, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("evctl "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.broker, "broker", "", "kafka or rabbitmq (default: the one whose environment is set: KAFKA_BROKERS, AMQP_URLS/AMQP_URL)")
	fs.Var(&o.brokers, "brokers", "Kafka bootstrap addresses host:port, comma-separated (overrides KAFKA_BROKERS)")
	fs.Var(&o.urls, "url", "RabbitMQ node URLs, comma-separated (overrides AMQP_URLS/AMQP_URL)")
	fs.BoolVar(&o.json, "json", false, "print JSON instead of a table")
	return fs
}

// selectionFlags adds the flags that choose dead letters.
func selectionFlags(fs *flag.FlagSet, o *options) {
	fs.Var(&o.dlqs, "dlq", "dead-letter topic (Kafka) or queue (RabbitMQ) to read, repeatable (default: every \"*.dlq\" topic on Kafka; on RabbitMQ the queues of --group)")
	fs.Var(&o.topics, "topic", "original topics whose dead letters to read (default: the platform topics on RabbitMQ, every topic on Kafka)")
	fs.Var(&o.groups, "group", "subscription groups whose dead letters to read (RabbitMQ: their \"<topic>.<group>.dlq\" queues; Kafka: x-dlq-group)")
	fs.Var((*listFilter)(&o.filter.types), "type", "event types (ce_type), repeatable")
	fs.Var((*listFilter)(&o.filter.keys), "key", "message keys, repeatable")
	fs.Var((*listFilter)(&o.filter.ids), "id", "event IDs (ce_id), repeatable")
	fs.StringVar(&o.filter.errText, "error", "", "only dead letters whose x-dlq-error contains this text (case-insensitive)")
	fs.Var(&timeFlag{t: &o.filter.since}, "since", "only dead letters dead-lettered at or after this time: RFC 3339 or a duration ago (90m)")
	fs.Var(&timeFlag{t: &o.filter.until}, "until", "only dead letters dead-lettered before this time: RFC 3339 or a duration ago")
}

// listFilter is a listFlag for filter values.
type listFilter []string

func (l *listFilter) String() string { return strings.Join(*l, ",") }
func (l *listFilter) Set(v string) error {
	return (*listFlag)(l).Set(v)
}

// timeFlag parses RFC 3339 times and durations before now. The reference
// "now" is taken when the flag is parsed.
type timeFlag struct{ t *time.Time }

func (f *timeFlag) String() string {
	if f.t == nil || f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339)
}

func (f *timeFlag) Set(v string) error {
	t, err := parseTime(v, time.Now())
	if err != nil {
		return err
	}
	*f.t = t
	return nil
}

// parseTime reads an RFC 3339 time (with or without fractional seconds), a
// date (2006-01-02, midnight UTC), or a positive Go duration meaning that
// long before now.
func parseTime(v string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(v); err == nil {
		if d < 0 {
			return time.Time{}, fmt.Errorf("%q: give a positive duration (it means that long ago)", v)
		}
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time (2026-01-02T15:04:05Z), a date (2026-01-02) nor a duration ago (90m, 24h)", v)
}

// parse parses args into fs and reports bad input as a usageError.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &usageError{msg: err.Error()}
	}
	return nil
}

// noArgs rejects positional arguments.
func noArgs(fs *flag.FlagSet) error {
	if fs.NArg() > 0 {
		return usagef("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// checkFilter reports contradictory filters.
func (o *options) checkFilter() error {
	f := &o.filter
	if !f.since.IsZero() && !f.until.IsZero() && !f.until.After(f.since) {
		return usagef("--until %s is not after --since %s: the time range is empty",
			f.until.Format(time.RFC3339), f.since.Format(time.RFC3339))
	}
	if o.limit < 0 {
		return usagef("--limit must not be negative, got %d", o.limit)
	}
	return nil
}

// kind returns the broker to use: --broker, else the one whose addresses
// were given as flags, else the one whose environment is set.
func (o *options) kind(lookup func(string) (string, bool)) (string, error) {
	switch strings.ToLower(o.broker) {
	case brokerKafka:
		return brokerKafka, nil
	case brokerRabbit, "rabbit", "amqp":
		return brokerRabbit, nil
	case "":
	default:
		return "", usagef("--broker %q: want kafka or rabbitmq", o.broker)
	}
	switch {
	case len(o.brokers) > 0 && len(o.urls) > 0:
		return "", usagef("both --brokers (Kafka) and --url (RabbitMQ) are given: choose one with --broker")
	case len(o.brokers) > 0:
		return brokerKafka, nil
	case len(o.urls) > 0:
		return brokerRabbit, nil
	}
	set := func(name string) bool { v, ok := lookup(name); return ok && v != "" }
	kafka := set("KAFKA_BROKERS")
	rabbit := set("AMQP_URLS") || set("AMQP_URL")
	switch {
	case kafka && rabbit:
		return "", usagef("both KAFKA_BROKERS and AMQP_URLS/AMQP_URL are set: choose one with --broker kafka|rabbitmq")
	case kafka:
		return brokerKafka, nil
	case rabbit:
		return brokerRabbit, nil
	}
	return "", usagef("no broker configured: set KAFKA_BROKERS (Kafka) or AMQP_URLS/AMQP_URL (RabbitMQ), or pass --brokers or --url")
}

// selectionKey identifies what a redrive selects, for its default progress
// group: the same command line resumes where it stopped.
func (o *options) selectionKey() string {
	f := &o.filter
	parts := []string{
		"type=" + sortedJoin(f.types), "key=" + sortedJoin(f.keys), "id=" + sortedJoin(f.ids),
		"group=" + sortedJoin(o.groups), "error=" + strings.ToLower(f.errText),
	}
	if !f.since.IsZero() {
		parts = append(parts, "since="+f.since.UTC().Format(time.RFC3339Nano))
	}
	if !f.until.IsZero() {
		parts = append(parts, "until="+f.until.UTC().Format(time.RFC3339Nano))
	}
	if f.empty() && len(o.groups) == 0 {
		return ""
	}
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:4])
}

func sortedJoin(s []string) string {
	c := slices.Clone(s)
	slices.Sort(c)
	return strings.Join(c, ",")
}
