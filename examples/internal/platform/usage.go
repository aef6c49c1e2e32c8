package platform

import (
	"flag"
	"fmt"
	"io"
	"strings"
)

// Help describes a program for its --help: what it does, what it serves
// and how it is run. Every reference program prints one through Usage.
type Help struct {
	// Name is the program's name, as in `go run ./examples/<Name>`.
	Name string
	// Doc says what the program does, in a paragraph or two.
	Doc string
	// Serves lists the HTTP endpoints, one per entry ("GET /summary  jobs by state (JSON)").
	Serves []string
	// Examples are example invocations, one per entry.
	Examples []string
}

// Usage returns a flag.FlagSet Usage function printing h, then fs's flags,
// to fs's output.
func Usage(fs *flag.FlagSet, h Help) func() {
	return func() { PrintUsage(fs.Output(), fs, h) }
}

// PrintUsage writes h and fs's flags to w.
func PrintUsage(w io.Writer, fs *flag.FlagSet, h Help) {
	fmt.Fprintf(w, "%s: %s\n", h.Name, strings.TrimSpace(h.Doc))
	if len(h.Serves) > 0 {
		fmt.Fprintln(w, "\nServes over HTTP:")
		for _, s := range h.Serves {
			fmt.Fprintln(w, "  "+s)
		}
	}
	fmt.Fprintf(w, "\nUsage:\n  go run ./examples/%s [flags]\n", h.Name)
	if len(h.Examples) > 0 {
		fmt.Fprintln(w, "\nExamples:")
		for _, e := range h.Examples {
			fmt.Fprintln(w, "  "+e)
		}
	}
	fmt.Fprintln(w, "\nFlags:")
	fs.SetOutput(w)
	fs.PrintDefaults()
}
