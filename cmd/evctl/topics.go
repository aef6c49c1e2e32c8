package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"text/tabwriter"
)

// topicsReport is what topics did and found.
type topicsReport struct {
	Broker string `json:"broker"`
	// Ensured is false with --ensure=false: nothing was created or
	// compared.
	Ensured   bool        `json:"ensured"`
	Created   []string    `json:"created"`
	Unchanged []string    `json:"unchanged"`
	Drift     []driftView `json:"drift"`
	// Lag is per group, topic and partition on Kafka; per queue on
	// RabbitMQ (messages ready in the queue).
	Lag []lagView `json:"lag"`
}

type driftView struct {
	Topic   string `json:"topic"`
	Setting string `json:"setting"`
	Want    string `json:"want"`
	Got     string `json:"got"`
}

type lagView struct {
	Group     string `json:"group"`
	Topic     string `json:"topic"`
	Queue     string `json:"queue,omitempty"`
	Partition int32  `json:"partition"`
	Lag       int64  `json:"lag"`
	Committed int64  `json:"committed"`
	End       int64  `json:"end"`
	Consumers int    `json:"consumers"`
}

func (r *topicsReport) addLag(group, topic, queue string, partition int32, lag, committed, end int64, consumers int) {
	r.Lag = append(r.Lag, lagView{Group: group, Topic: topic, Queue: queue, Partition: partition,
		Lag: lag, Committed: committed, End: end, Consumers: consumers})
}

func cmdTopics(ctx context.Context, args []string, e *env) error {
	var o options
	fs := newFlags("topics", &o, e.stderr)
	fs.BoolVar(&o.ensure, "ensure", true, "create the missing platform topics and their dead-letter topics, and compare the others with their specs (existing topics are never changed); --ensure=false only reports lag")
	fs.Var(&o.groups, "group", "consumer groups whose lag to show (Kafka default: every group; RabbitMQ: required for queue depths)")
	fs.Var(&o.topics, "topic", "Kafka: only show lag on these topics; RabbitMQ: the topics to ensure and whose group queues to show (default: the platform topics)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := noArgs(fs); err != nil {
		return err
	}
	b, _, err := open(ctx, &o)
	if err != nil {
		return err
	}
	defer b.close()
	rep, err := b.topics(ctx, &o)
	if err != nil {
		return err
	}
	for _, s := range []*[]string{&rep.Created, &rep.Unchanged} {
		if *s == nil {
			*s = []string{}
		}
		slices.Sort(*s)
	}
	if rep.Drift == nil {
		rep.Drift = []driftView{}
	}
	if rep.Lag == nil {
		rep.Lag = []lagView{}
	}
	if o.json {
		if err := writeJSON(e.stdout, rep); err != nil {
			return err
		}
	} else if err := printTopics(e, rep); err != nil {
		return err
	}
	if len(rep.Drift) > 0 {
		return fmt.Errorf("%w: %d difference(s), left unchanged", errDrift, len(rep.Drift))
	}
	return nil
}

func printTopics(e *env, rep *topicsReport) error {
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	if rep.Ensured {
		fmt.Fprintln(tw, "TOPIC\tSTATE\tDETAIL")
		for _, t := range rep.Created {
			fmt.Fprintf(tw, "%s\tcreated\t\n", t)
		}
		for _, t := range rep.Unchanged {
			fmt.Fprintf(tw, "%s\tok\t\n", t)
		}
		for _, d := range rep.Drift {
			fmt.Fprintf(tw, "%s\tDRIFT\t%s is %s, spec says %s\n", d.Topic, d.Setting, d.Got, d.Want)
		}
		fmt.Fprintln(tw)
	}
	// Lag, summed per group and topic (and queue).
	type key struct{ group, topic, queue string }
	sums := map[key]*lagView{}
	var order []key
	for _, l := range rep.Lag {
		k := key{l.Group, l.Topic, l.Queue}
		s := sums[k]
		if s == nil {
			c := l
			c.Partition = 0
			s = &c
			sums[k] = s
			order = append(order, k)
			continue
		}
		s.Lag += l.Lag
		s.Partition++
	}
	if len(order) == 0 {
		fmt.Fprintln(tw, "no consumer groups")
		return tw.Flush()
	}
	slices.SortFunc(order, func(a, b key) int {
		return strings.Compare(a.group+"\x00"+a.topic+"\x00"+a.queue, b.group+"\x00"+b.topic+"\x00"+b.queue)
	})
	if rep.Broker == brokerKafka {
		fmt.Fprintln(tw, "GROUP\tTOPIC\tPARTITIONS\tLAG\tMEMBERS")
		for _, k := range order {
			s := sums[k]
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%s\n", k.group, k.topic, s.Partition+1, s.Lag, members(s.Consumers))
		}
	} else {
		fmt.Fprintln(tw, "GROUP\tTOPIC\tQUEUE\tREADY\tCONSUMERS")
		for _, k := range order {
			s := sums[k]
			fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%s\n", k.group, k.topic, k.queue, s.Lag, members(s.Consumers))
		}
	}
	return tw.Flush()
}

func members(n int) string {
	if n < 0 {
		return "?"
	}
	return fmt.Sprint(n)
}
