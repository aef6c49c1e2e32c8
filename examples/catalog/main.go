// Command catalog is a tour of the event catalogue: it builds one event of
// every built-in type, encodes it in JSON and Avro, decodes both again, checks
// the round trip and prints what a consumer would see on the wire.
//
//	go run ./examples/catalog
//
// It needs nothing but Go: no broker, no network.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"reflect"
	"text/tabwriter"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/cosmic-horizons/events/examples/internal/platform"
	"github.com/cosmic-horizons/events/internal/samples"
	"github.com/cosmic-horizons/events/schemas"
)

func main() {
	fs := flag.NewFlagSet("catalog", flag.ContinueOnError)
	fs.Usage = platform.Usage(fs, platform.Help{
		Name: "catalog",
		Doc: `is a tour of the event catalogue: it builds one event of every
built-in type, encodes it in JSON and Avro, decodes both again, checks the
round trip and prints what a consumer would see on the wire (topic, key,
CloudEvents headers, sizes, one JSON body). It needs no broker and no
network, and serves no HTTP; it takes no flags.`,
		Examples: []string{"go run ./examples/catalog"},
	})
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "catalog: unexpected arguments %q (see --help)\n", fs.Args())
		os.Exit(2)
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "catalog:", err)
		os.Exit(1)
	}
}

func run() error {
	reg := eventmodels.NewRegistry()
	codecs, err := schemas.NewCodecs(reg, 0)
	if err != nil {
		return err
	}
	avroCodec, _ := codecs.For(eventmodels.ContentTypeAvro)
	jsonCodec, _ := codecs.For(eventmodels.ContentTypeJSON)

	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "EVENT TYPE\tTOPIC\tKEY\tDATASCHEMA\tAVRO B\tJSON B\tROUND TRIP")
	var firstJSON []byte
	for _, e := range samples.All() {
		typ := e.Envelope().EventType
		info, _ := reg.Lookup(typ)
		a, err := avroCodec.Encode(e)
		if err != nil {
			return fmt.Errorf("%s: avro: %w", typ, err)
		}
		j, err := jsonCodec.Encode(e)
		if err != nil {
			return fmt.Errorf("%s: json: %w", typ, err)
		}
		fromAvro, err := avroCodec.Decode(a, eventmodels.Meta{EventType: typ})
		if err != nil {
			return fmt.Errorf("%s: avro decode: %w", typ, err)
		}
		fromJSON, err := jsonCodec.Decode(j, eventmodels.Meta{})
		if err != nil {
			return fmt.Errorf("%s: json decode: %w", typ, err)
		}
		ok := reflect.DeepEqual(fromAvro, e) && reflect.DeepEqual(fromJSON, e)
		if !ok {
			return fmt.Errorf("%s: round trip changed the event", typ)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%d\t%s\n", typ, info.Topic, e.Key(), avroCodec.DataSchema(typ), len(a), len(j), "ok")
		if firstJSON == nil {
			firstJSON = j
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var pretty map[string]any
	_ = json.Unmarshal(firstJSON, &pretty)
	out, _ := json.MarshalIndent(pretty, "", "  ")
	fmt.Printf("\nA job.submitted event in JSON:\n%s\n", out)

	bad := samples.All()[2].(*eventmodels.JobStatusChanged)
	bad.FromStatus, bad.ToStatus, bad.UserID = eventmodels.StatusCompleted, eventmodels.StatusRunning, ""
	fmt.Printf("\nAn illegal event is refused with every broken field:\n  %v\n", bad.Validate())
	return nil
}
