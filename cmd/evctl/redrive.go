package main

import (
	"context"
	"fmt"
	"text/tabwriter"

	"github.com/cosmic-horizons/events/broker"
)

// redrivePlan is what a redrive of one source does.
type redrivePlan struct {
	// selected says which messages go back.
	selected func(*broker.Message) bool
	// dryRun reports what would go back and changes nothing.
	dryRun bool
	// progressGroup is the Kafka consumer group that records progress.
	progressGroup string
	env           *env
	// moved is called for every message put back (or that would be, in a
	// dry run), once its republish is confirmed.
	moved func(r *record, target string)
	// n counts messages republished in this run, for the faults.
	n int
}

// redriveResult sums up the redrive of one source.
type redriveResult struct {
	Source string `json:"source"`
	// ProgressGroup is the consumer group holding the redrive's progress
	// (Kafka only).
	ProgressGroup string `json:"progress_group,omitempty"`
	// Read counts the messages read (on Kafka, from the committed
	// progress on).
	Read int `json:"read"`
	// Redriven counts the messages put back (or that would be, with
	// --dry-run).
	Redriven int `json:"redriven"`
	// Skipped counts selected dead letters that cannot go back: their body
	// was not kept (too large to dead-letter whole).
	Skipped int  `json:"skipped_body_dropped"`
	DryRun  bool `json:"dry_run"`
}

// confirmed runs the faults after a confirmed republish.
func (p *redrivePlan) confirmed() error {
	p.n++
	if f := p.env.faults.afterPublish; f != nil {
		return f(p.n)
	}
	return nil
}

// committed runs the faults after the progress of a message is recorded.
func (p *redrivePlan) committed() error {
	if f := p.env.faults.afterCommit; f != nil {
		return f(p.n)
	}
	return nil
}

func cmdRedrive(ctx context.Context, args []string, e *env) error {
	var o options
	fs := newFlags("dlq redrive", &o, e.stderr)
	selectionFlags(fs, &o)
	fs.BoolVar(&o.dryRun, "dry-run", false, "show what would go back; publish and commit nothing")
	fs.StringVar(&o.progressGroup, "progress-group", "", "Kafka: consumer group recording the redrive's progress (default evctl-redrive-<dlq topic>[-<hash of the filters>])")
	b, kind, srcs, err := openDeadLetters(ctx, fs, args, &o)
	if err != nil {
		return err
	}
	defer b.close()
	var results []*redriveResult
	var moved []*messageView
	dec, err := newDecoder()
	if err != nil {
		return err
	}
	for _, src := range srcs {
		p := &redrivePlan{
			selected: o.filterFor(kind).match,
			dryRun:   o.dryRun,
			env:      e,
			moved: func(r *record, target string) {
				v := dec.view(r)
				v.Headers, v.RedrivenTo = nil, target
				moved = append(moved, v)
			},
		}
		if kind == brokerKafka {
			p.progressGroup = o.progressGroup
			if p.progressGroup == "" {
				p.progressGroup = defaultProgressGroup(src, o.selectionKey())
			}
		}
		res, err := b.redrive(ctx, src, p)
		if res != nil {
			results = append(results, res)
		}
		if err != nil {
			return fmt.Errorf("redrive %s: %w (%d put back before the failure; run the same command again to go on)", src, err, p.n)
		}
	}
	if o.json {
		return writeJSON(e.stdout, map[string]any{"results": results, "messages": moved})
	}
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if len(moved) > 0 {
		verb := "REDRIVEN"
		if o.dryRun {
			verb = "WOULD REDRIVE"
		}
		fmt.Fprintf(tw, "%s\tPOSITION\tTO\tTYPE\tKEY\tID\n", verb)
		for _, v := range moved {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", v.Source, v.Position, v.RedrivenTo, v.Type, v.Key, v.ID)
		}
		fmt.Fprintln(tw)
	}
	fmt.Fprintf(tw, "SOURCE\tREAD\tREDRIVEN\tSKIPPED (NO BODY)\tPROGRESS GROUP\n")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", r.Source, r.Read, r.Redriven, r.Skipped, dash(r.ProgressGroup))
	}
	if o.dryRun {
		fmt.Fprintln(tw, "(dry run: nothing was published or committed)")
	}
	return tw.Flush()
}

// defaultProgressGroup names the Kafka group of a redrive of dlq: one per
// selection, so that running the same command again resumes it.
func defaultProgressGroup(dlq, selection string) string {
	g := "evctl-redrive-" + dlq
	if selection != "" {
		g += "-" + selection
	}
	return g
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
