package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/cosmic-horizons/events/broker"
)

// filterFor returns the message filter of o on a broker kind: on Kafka,
// --group selects dead letters by x-dlq-group; on RabbitMQ it selects the
// group's queues instead.
func (o *options) filterFor(kind string) *filter {
	f := o.filter
	if kind == brokerKafka {
		f.groups = o.groups
	}
	return &f
}

// open connects to the broker o names.
func open(ctx context.Context, o *options) (backend, string, error) {
	kind, err := o.kind(os.LookupEnv)
	if err != nil {
		return nil, "", err
	}
	var b backend
	if kind == brokerKafka {
		b, err = openKafka(ctx, o)
	} else {
		b, err = openRabbit(ctx, o)
	}
	return b, kind, err
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// dlqSummary is one dead-letter source in dlq list.
type dlqSummary struct {
	Source string         `json:"source"`
	Count  int            `json:"count"`
	Oldest string         `json:"oldest,omitempty"`
	Newest string         `json:"newest,omitempty"`
	Errors []errorSummary `json:"errors"`
}

// errorSummary groups the dead letters of a source by x-dlq-error.
type errorSummary struct {
	Error  string   `json:"error"`
	Count  int      `json:"count"`
	Oldest string   `json:"oldest,omitempty"`
	Newest string   `json:"newest,omitempty"`
	Types  []string `json:"types"`
	Topics []string `json:"topics"`
}

// span tracks the oldest and newest x-dlq-time.
type span struct{ oldest, newest time.Time }

func (s *span) add(m *broker.Message) {
	t, ok := deadLetteredAt(m)
	if !ok {
		return
	}
	if s.oldest.IsZero() || t.Before(s.oldest) {
		s.oldest = t
	}
	if t.After(s.newest) {
		s.newest = t
	}
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

// openDeadLetters finishes a dlq command's parsing (fs holds its flags:
// no positional arguments, a valid filter), opens the broker and lists the
// dead-letter sources selected. The caller closes b.
func openDeadLetters(ctx context.Context, fs *flag.FlagSet, args []string, o *options) (b backend, kind string, srcs []string, err error) {
	if err := parse(fs, args); err != nil {
		return nil, "", nil, err
	}
	if err := noArgs(fs); err != nil {
		return nil, "", nil, err
	}
	if err := o.checkFilter(); err != nil {
		return nil, "", nil, err
	}
	b, kind, err = open(ctx, o)
	if err != nil {
		return nil, "", nil, err
	}
	if srcs, err = b.deadLetterSources(ctx, o); err != nil {
		_ = b.close()
		return nil, "", nil, err
	}
	return b, kind, srcs, nil
}

func cmdList(ctx context.Context, args []string, e *env) error {
	var o options
	fs := newFlags("dlq list", &o, e.stderr)
	selectionFlags(fs, &o)
	b, kind, srcs, err := openDeadLetters(ctx, fs, args, &o)
	if err != nil {
		return err
	}
	defer b.close()
	f := o.filterFor(kind)
	out := make([]dlqSummary, 0, len(srcs))
	for _, src := range srcs {
		sum := dlqSummary{Source: src, Errors: []errorSummary{}}
		var all span
		byErr := map[string]*errorSummary{}
		spans := map[string]*span{}
		err := b.scan(ctx, src, 0, func(r *record) error {
			if !f.match(r.msg) {
				return nil
			}
			sum.Count++
			all.add(r.msg)
			key := r.msg.Header(broker.HeaderDLQError)
			es := byErr[key]
			if es == nil {
				es = &errorSummary{Error: key}
				byErr[key], spans[key] = es, &span{}
			}
			es.Count++
			spans[key].add(r.msg)
			es.Types = addUnique(es.Types, r.msg.Header(broker.HeaderType))
			es.Topics = addUnique(es.Topics, originalTopic(r.msg, src))
			return nil
		})
		if err != nil {
			return fmt.Errorf("read %s: %w", src, err)
		}
		sum.Oldest, sum.Newest = stamp(all.oldest), stamp(all.newest)
		for k, es := range byErr {
			es.Oldest, es.Newest = stamp(spans[k].oldest), stamp(spans[k].newest)
			sum.Errors = append(sum.Errors, *es)
		}
		slices.SortFunc(sum.Errors, func(a, b errorSummary) int {
			if a.Count != b.Count {
				return b.Count - a.Count
			}
			return strings.Compare(a.Error, b.Error)
		})
		out = append(out, sum)
	}
	if o.json {
		return writeJSON(e.stdout, out)
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "DEAD LETTERS\tCOUNT\tOLDEST\tNEWEST\tERROR")
	for _, s := range out {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", s.Source, s.Count, dash(s.Oldest), dash(s.Newest), "(all)")
		for _, es := range s.Errors {
			fmt.Fprintf(tw, "  \t%d\t%s\t%s\t%s\n", es.Count, dash(es.Oldest), dash(es.Newest), shorten(es.Error, 100))
		}
	}
	return tw.Flush()
}

func addUnique(s []string, v string) []string {
	if v == "" || slices.Contains(s, v) {
		return s
	}
	s = append(s, v)
	slices.Sort(s)
	return s
}

// shorten cuts s to n runes, on one line.
func shorten(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "-"
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func cmdShow(ctx context.Context, args []string, e *env) error {
	var o options
	fs := newFlags("dlq show", &o, e.stderr)
	selectionFlags(fs, &o)
	fs.IntVar(&o.limit, "limit", 0, "show at most this many dead letters per source (0: all)")
	b, kind, srcs, err := openDeadLetters(ctx, fs, args, &o)
	if err != nil {
		return err
	}
	defer b.close()
	dec, err := newDecoder()
	if err != nil {
		return err
	}
	f := o.filterFor(kind)
	for _, src := range srcs {
		shown := 0
		err := b.scan(ctx, src, 0, func(r *record) error {
			if !f.match(r.msg) {
				return nil
			}
			if err := printMessage(e.stdout, dec.view(r), o.json); err != nil {
				return err
			}
			shown++
			if o.limit > 0 && shown >= o.limit {
				return errStop
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("read %s: %w", src, err)
		}
	}
	return nil
}

// printMessage writes v as one JSON line, or as a block: a summary line,
// the x-dlq-* and other headers, and the event as indented JSON.
func printMessage(w io.Writer, v *messageView, asJSON bool) error {
	if asJSON {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}
	var sb strings.Builder
	fmt.Fprintf(&sb, "── %s %s  type=%s key=%s id=%s\n", v.Source, v.Position, dash(v.Type), dash(v.Key), dash(v.ID))
	keys := make([]string, 0, len(v.Headers))
	for k := range v.Headers {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		// x-dlq-* first: they say why the message is here.
		da, db := strings.HasPrefix(a, "x-dlq-"), strings.HasPrefix(b, "x-dlq-")
		if da != db {
			if da {
				return -1
			}
			return 1
		}
		return strings.Compare(a, b)
	})
	for _, k := range keys {
		fmt.Fprintf(&sb, "   %s: %s\n", k, v.Headers[k])
	}
	switch {
	case len(v.Event) > 0:
		body, _ := json.MarshalIndent(v.Event, "   ", "  ")
		fmt.Fprintf(&sb, "   event: %s\n", body)
	case len(v.Body) > 0:
		body, _ := json.MarshalIndent(v.Body, "   ", "  ")
		fmt.Fprintf(&sb, "   body (not decoded: %s): %s\n", v.DecodeError, body)
	case v.BodyBase64 != "":
		fmt.Fprintf(&sb, "   body (base64; not decoded: %s): %s\n", v.DecodeError, v.BodyBase64)
	default:
		fmt.Fprintf(&sb, "   body: (empty)\n")
	}
	_, err := io.WriteString(w, sb.String())
	return err
}

func cmdTail(ctx context.Context, args []string, e *env) error {
	var o options
	fs := newFlags("tail", &o, e.stderr)
	fs.BoolVar(&o.fromBeginning, "from-beginning", false, "Kafka: start at the oldest message instead of the newest (RabbitMQ keeps no history: always from now)")
	fs.IntVar(&o.count, "count", 0, "stop after this many messages (0: until interrupted)")
	// evctl tail TOPIC [flags] and evctl tail [flags] TOPIC both work.
	var topic string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		topic, args = args[0], args[1:]
	}
	if err := parse(fs, args); err != nil {
		return err
	}
	if topic == "" && fs.NArg() > 0 {
		topic = fs.Arg(0)
		if err := parse(fs, fs.Args()[1:]); err != nil {
			return err
		}
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	if topic == "" {
		return usagef("tail needs a topic: evctl tail TOPIC")
	}
	if o.count < 0 {
		return usagef("--count must not be negative, got %d", o.count)
	}
	dec, err := newDecoder()
	if err != nil {
		return err
	}
	b, _, err := open(ctx, &o)
	if err != nil {
		return err
	}
	defer b.close()
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if !o.json {
		fmt.Fprintln(tw, "POSITION\tTIME\tTYPE\tKEY\tEVENT")
	}
	seen := 0
	err = b.tail(ctx, topic, o.fromBeginning, func(desc string) {
		fmt.Fprintf(e.stderr, "evctl: tailing %s; interrupt to stop\n", desc)
	}, func(r *record) error {
		v := dec.view(r)
		if o.json {
			if err := printMessage(e.stdout, v, true); err != nil {
				return err
			}
		} else {
			body := string(v.Event)
			switch {
			case body != "":
			case len(v.Body) > 0:
				body = string(v.Body)
			default:
				body = "base64:" + v.BodyBase64
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", v.Position, dash(v.Headers[broker.HeaderTime]), dash(v.Type), dash(v.Key), body)
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		seen++
		if o.count > 0 && seen >= o.count {
			return errStop
		}
		return nil
	})
	if err != nil {
		return err
	}
	return tw.Flush()
}
