package events_test

import (
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/cosmic-horizons/events"

// TestArchitectureImportGraph keeps docs/architecture.md honest: its import
// table (between <!-- import-graph --> and <!-- /import-graph -->) lists,
// for every package of both modules, exactly the packages of this
// repository it imports (tests aside), as go list sees them.
func TestArchitectureImportGraph(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("no go command on PATH")
		}
		t.Skip("no go command on PATH")
	}
	// Standard output only: on a fresh module cache go list also writes
	// "go: downloading …" lines, to standard error.
	cmd := exec.Command(gobin, "list", "-f", `{{.ImportPath}}:{{join .Imports " "}}`, "./...", "./examples/...")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list (the examples module is reached through go.work): %v\n%s", err, stderr.String())
	}
	actual := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, ":")
		var own []string
		for _, imp := range strings.Fields(imports) {
			if imp == module || strings.HasPrefix(imp, module+"/") {
				own = append(own, short(imp))
			}
		}
		slices.Sort(own)
		actual[short(pkg)] = own
	}

	doc, err := os.ReadFile("docs/architecture.md")
	if err != nil {
		t.Fatal(err)
	}
	_, table, ok := strings.Cut(string(doc), "<!-- import-graph -->")
	table, _, ok2 := strings.Cut(table, "<!-- /import-graph -->")
	if !ok || !ok2 {
		t.Fatal("docs/architecture.md has no <!-- import-graph --> … <!-- /import-graph --> table")
	}
	row := regexp.MustCompile("^\\| `([^`]+)` \\| (.*) \\|$")
	tick := regexp.MustCompile("`([^`]+)`")
	documented := map[string][]string{}
	for _, line := range strings.Split(table, "\n") {
		m := row.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil {
			continue
		}
		var imps []string
		for _, x := range tick.FindAllStringSubmatch(m[2], -1) {
			imps = append(imps, x[1])
		}
		slices.Sort(imps)
		documented[m[1]] = imps
	}
	for pkg, want := range actual {
		got, ok := documented[pkg]
		if !ok {
			t.Errorf("docs/architecture.md: package %s missing; it imports %s", pkg, list(want))
			continue
		}
		if !slices.Equal(got, want) {
			t.Errorf("docs/architecture.md: %s imports %s, the table says %s", pkg, list(want), list(got))
		}
	}
	for pkg := range documented {
		if _, ok := actual[pkg]; !ok {
			t.Errorf("docs/architecture.md lists %s, which does not exist", pkg)
		}
	}
}

// short names a package of this repository as the docs do: "events" for
// the root, else its path in the repository.
func short(p string) string {
	if p == module {
		return "events"
	}
	return strings.TrimPrefix(p, module+"/")
}

func list(ps []string) string {
	if len(ps) == 0 {
		return "nothing"
	}
	return strings.Join(ps, ", ")
}
