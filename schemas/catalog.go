package schemas

import (
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/cosmic-horizons/events/eventmodels"
	"github.com/hamba/avro/v2"
)

//go:embed *.avsc history/*.avsc
var files embed.FS

//go:embed catalog.json
var catalogJSON []byte

// CatalogJSON returns catalog.json, the file beside the .avsc files that
// tells a producer in another language what the schemas alone do not: for
// each event type its topic, schema and version, Avro record (and union
// branch), ce_dataschema value and key field, and the CloudEvents headers
// to write. docs/foreign-producers.md explains it; a test of the root
// package checks it against the registry. The result is a copy.
func CatalogJSON() []byte { return append([]byte(nil), catalogJSON...) }

// current holds the version of each top-level .avsc file. It is the same
// table eventmodels writes into Base.SchemaVersion; TestCatalogVersions
// checks that history/ holds every version below it.
var current = map[string]int{
	eventmodels.SchemaJobLifecycle:  eventmodels.JobLifecycleSchemaVersion,
	eventmodels.SchemaJobMetrics:    eventmodels.JobMetricsSchemaVersion,
	eventmodels.SchemaNotifications: eventmodels.NotificationSchemaVersion,
	eventmodels.SchemaAuditTrail:    eventmodels.AuditSchemaVersion,
	eventmodels.SchemaSystemHealth:  eventmodels.SystemHealthSchemaVersion,
}

// Schema is one released version of a named schema.
type Schema struct {
	// Name is the schema's name, which is also its topic, e.g. "job-metrics".
	Name string
	// Version counts releases from 1.
	Version int
	// Avro is the parsed schema: a record, or a union of records.
	Avro avro.Schema
	// Source is the .avsc text.
	Source string
}

// DataSchema returns the value of the ce_dataschema header for bodies
// written with s, e.g. "job-metrics/v2".
func (s *Schema) DataSchema() string { return DataSchema(s.Name, s.Version) }

// DataSchema formats a ce_dataschema value: "<name>/v<version>".
func DataSchema(name string, version int) string {
	return name + "/v" + strconv.Itoa(version)
}

// ParseDataSchema splits a ce_dataschema value made by DataSchema.
func ParseDataSchema(s string) (name string, version int, ok bool) {
	name, v, found := strings.Cut(s, "/v")
	if !found || name == "" {
		return "", 0, false
	}
	version, err := strconv.Atoi(v)
	if err != nil || version < 1 {
		return "", 0, false
	}
	return name, version, true
}

// Catalog holds every released version of a set of schemas. It is
// immutable and safe for concurrent use.
type Catalog struct {
	byName map[string][]*Schema // ascending versions
}

var builtin = sync.OnceValues(loadBuiltin)

// Builtin returns the catalog of the embedded schemas, parsed on first use.
// It fails only if an embedded file is broken, which the package's tests
// rule out.
func Builtin() (*Catalog, error) { return builtin() }

func loadBuiltin() (*Catalog, error) {
	c := &Catalog{byName: map[string][]*Schema{}}
	err := fs.WalkDir(files, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		base := strings.TrimSuffix(strings.TrimPrefix(path, "history/"), ".avsc")
		name, version := base, 0
		if strings.HasPrefix(path, "history/") {
			n, v, ok := strings.Cut(base, ".v")
			num, err := strconv.Atoi(v)
			if !ok || err != nil {
				return fmt.Errorf("schemas: history file %s is not <name>.v<N>.avsc", path)
			}
			name, version = n, num
		} else {
			v, ok := current[name]
			if !ok {
				return fmt.Errorf("schemas: %s has no current version", path)
			}
			version = v
		}
		src, err := files.ReadFile(path)
		if err != nil {
			return err
		}
		return c.add(name, version, string(src))
	})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (c *Catalog) add(name string, version int, src string) error {
	if version < 1 {
		return fmt.Errorf("schemas: %s: version must be at least 1", name)
	}
	parsed, err := avro.ParseWithCache(src, "", &avro.SchemaCache{})
	if err != nil {
		return fmt.Errorf("schemas: parse %s v%d: %w", name, version, err)
	}
	for _, s := range c.byName[name] {
		if s.Version == version {
			return fmt.Errorf("schemas: %s v%d defined twice", name, version)
		}
	}
	list := append(c.byName[name], &Schema{Name: name, Version: version, Avro: parsed, Source: src})
	sort.Slice(list, func(i, j int) bool { return list[i].Version < list[j].Version })
	c.byName[name] = list
	return nil
}

// With returns a copy of c that also holds version of the schema name with
// the given .avsc source; downstream event types bring their schemas this
// way. c itself is unchanged.
func (c *Catalog) With(name string, version int, avsc string) (*Catalog, error) {
	out := &Catalog{byName: make(map[string][]*Schema, len(c.byName)+1)}
	for k, v := range c.byName {
		out.byName[k] = append([]*Schema(nil), v...)
	}
	if err := out.add(name, version, avsc); err != nil {
		return nil, err
	}
	return out, nil
}

// Names returns the schema names, sorted.
func (c *Catalog) Names() []string {
	out := make([]string, 0, len(c.byName))
	for k := range c.byName {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// Current returns the newest version of name.
func (c *Catalog) Current(name string) (*Schema, bool) {
	list := c.byName[name]
	if len(list) == 0 {
		return nil, false
	}
	return list[len(list)-1], true
}

// Version returns the given version of name.
func (c *Catalog) Version(name string, version int) (*Schema, bool) {
	for _, s := range c.byName[name] {
		if s.Version == version {
			return s, true
		}
	}
	return nil, false
}

// Versions returns every version of name, oldest first.
func (c *Catalog) Versions(name string) []*Schema {
	return append([]*Schema(nil), c.byName[name]...)
}

// record finds the record named fullName in s and its branch index when s is
// a union (-1 when s is the record itself).
func record(s avro.Schema, fullName string) (*avro.RecordSchema, int, bool) {
	switch t := s.(type) {
	case *avro.RecordSchema:
		return t, -1, t.FullName() == fullName
	case *avro.UnionSchema:
		for i, b := range t.Types() {
			if r, ok := b.(*avro.RecordSchema); ok && r.FullName() == fullName {
				return r, i, true
			}
		}
	}
	return nil, 0, false
}
