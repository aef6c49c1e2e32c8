package events_test

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestReadmeCodeIsTested: every Go block of the README is a region of a
// runnable Example (or of the code around one) that go test checks, so the
// README cannot drift from code that works. A block is preceded by
// "<!-- code: FILE#NAME -->" and must equal, line for line once indented
// alike, the lines of FILE between "// [NAME]" and "// [/NAME]".
func TestReadmeCodeIsTested(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(readme)
	marker := regexp.MustCompile(`<!-- code: ([^#\s]+)#([\w-]+) -->\s*\n` + "```go\n" + `((?s:.*?))` + "```")
	found := marker.FindAllStringSubmatch(doc, -1)
	if blocks := strings.Count(doc, "```go"); blocks != len(found) {
		t.Errorf("the README has %d Go blocks, %d of them marked with <!-- code: FILE#NAME -->: every Go block must be tested code", blocks, len(found))
	}
	for _, m := range found {
		file, name, block := m[1], m[2], m[3]
		src, err := os.ReadFile(filepath.FromSlash(file))
		if err != nil {
			t.Errorf("%s#%s: %v", file, name, err)
			continue
		}
		region, ok := regionOf(string(src), name)
		if !ok {
			t.Errorf("%s has no region // [%s] … // [/%s]", file, name, name)
			continue
		}
		if normalize(block) != normalize(region) {
			t.Errorf("the README block %s#%s differs from the code; paste this into the README:\n%s", file, name, dedent(region))
		}
	}
}

// regionOf returns the lines of src between "// [name]" and "// [/name]".
func regionOf(src, name string) (string, bool) {
	start := strings.Index(src, "// ["+name+"]\n")
	end := strings.Index(src, "// [/"+name+"]")
	if start < 0 || end < start {
		return "", false
	}
	region := src[start+len("// ["+name+"]\n") : end]
	return region[:strings.LastIndex(region, "\n")+1], true
}

// normalize drops indentation and blank lines.
func normalize(s string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// dedent removes the indentation the region's first line has.
func dedent(s string) string {
	lines := strings.Split(s, "\n")
	indent := lines[0][:len(lines[0])-len(strings.TrimLeft(lines[0], "\t"))]
	for i, l := range lines {
		lines[i] = strings.TrimPrefix(l, indent)
	}
	return strings.Join(lines, "\n")
}
