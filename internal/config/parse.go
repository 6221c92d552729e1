package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/kudod-dev/kudod/manifests"
)

// Parse reads and validates a configuration; filename names it in errors, and relative file
// paths in it are resolved against filename's directory. All problems found are returned
// together, ordered by line, each a manifests.Finding: "FILE:LINE: FIELD: MESSAGE", the way
// problems of instance files and packages are reported.
func Parse(data []byte, filename string) (*Config, error) {
	dir, err := filepath.Abs(filepath.Dir(filename))
	if err != nil {
		return nil, err
	}
	d := &decoder{file: filename, dir: dir}
	root, err := d.document(data)
	if err != nil {
		return nil, err
	}
	cfg := d.config(root)
	if len(d.errs) > 0 {
		sort.SliceStable(d.errs, func(i, j int) bool { return d.errs[i].Line < d.errs[j].Line })
		errs := make([]error, len(d.errs))
		for i, e := range d.errs {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	return cfg, nil
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// document parses data as exactly one YAML document and returns its top node.
func (d *decoder) document(data []byte) (*yaml.Node, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, d.finding(0, "", "the file is empty; at least one repository is required")
		}
		if m := yamlLine.FindStringSubmatch(err.Error()); m != nil {
			line, _ := strconv.Atoi(m[1])
			return nil, d.finding(line, "", "invalid YAML: "+m[2])
		}
		return nil, d.finding(0, "", "invalid YAML: "+strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		return nil, d.finding(next.Line, "", "only one YAML document is allowed")
	}
	if len(doc.Content) == 0 {
		return nil, d.finding(0, "", "the file is empty; at least one repository is required")
	}
	return doc.Content[0], nil
}

// decoder walks the YAML tree by hand rather than unmarshalling into structs, so that every
// error can name its line and field, and defaults can be told from explicit values.
type decoder struct {
	file string
	dir  string
	errs []manifests.Finding
}

// finding is an error at a line of the file (0: the whole file) and a field (the path of the
// object or field, e.g. repositories[0].auth; empty for the top).
func (d *decoder) finding(line int, field, msg string) manifests.Finding {
	if field != "" {
		msg = field + ": " + msg
	}
	return manifests.Finding{Severity: manifests.SeverityError, File: d.file, Line: line, Message: msg}
}

func (d *decoder) errorf(n *yaml.Node, field, format string, args ...any) {
	d.errs = append(d.errs, d.finding(n.Line, field, fmt.Sprintf(format, args...)))
}

// fieldSet is what a mapping may hold: a handler per key, given the value and its path.
type fieldSet map[string]func(v *yaml.Node, field string)

// fields calls the handler of each key of mapping n, reporting unknown and repeated keys.
// A null value (`cluster:` with nothing under it) is an empty mapping.
func (d *decoder) fields(n *yaml.Node, field string, set fieldSet) {
	n = deref(n)
	if isNull(n) {
		return
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, field, "must be a mapping, not %s", kindName(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if line, ok := seen[k.Value]; ok {
			d.errorf(k, field, "field %q is repeated (first on line %d)", k.Value, line)
			continue
		}
		seen[k.Value] = k.Line
		h, ok := set[k.Value]
		if !ok {
			d.errorf(k, field, "unknown field %q", k.Value)
			continue
		}
		h(v, join(field, k.Value))
	}
}

func join(field, key string) string {
	if field == "" {
		return key
	}
	return field + "." + key
}

func deref(n *yaml.Node) *yaml.Node {
	for n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "this"
}

// str returns a scalar as a string; null is "".
func (d *decoder) str(n *yaml.Node, field string) string {
	n = deref(n)
	if isNull(n) {
		return ""
	}
	if n.Kind != yaml.ScalarNode {
		d.errorf(n, field, "must be a string, not %s", kindName(n))
		return ""
	}
	return n.Value
}

func (d *decoder) boolean(n *yaml.Node, field string) bool {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		d.errorf(n, field, "must be true or false, not %s", kindName(n))
		return false
	}
	var b bool
	_ = n.Decode(&b)
	return b
}

// duration reads a Go duration ("1m", "90s") that must be positive.
func (d *decoder) duration(n *yaml.Node, field string) time.Duration {
	s := d.str(n, field)
	v, err := time.ParseDuration(s)
	switch {
	case err != nil:
		d.errorf(n, field, "invalid duration %q: use a number with a unit, like 30s, 1m or 1h30m", s)
	case v <= 0:
		d.errorf(n, field, "must be positive, not %q", s)
	}
	return v
}

func (d *decoder) stringList(n *yaml.Node, field string) []string {
	return list(d, n, field, d.str)
}

// list reads a sequence, calling item for each element with its path (field[i]). A null value
// is no list (nil); anything but a sequence is reported and read as none.
func list[T any](d *decoder, n *yaml.Node, field string, item func(n *yaml.Node, field string) T) []T {
	n = deref(n)
	if isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		d.errorf(n, field, "must be a list, not %s", kindName(n))
		return nil
	}
	out := make([]T, 0, len(n.Content))
	for i, e := range n.Content {
		out = append(out, item(e, fmt.Sprintf("%s[%d]", field, i)))
	}
	return out
}

// filePath reads a file path, resolved against the configuration's directory.
func (d *decoder) filePath(n *yaml.Node, field string) string {
	s := d.str(n, field)
	if s == "" {
		d.errorf(n, field, "must name a file")
		return ""
	}
	if filepath.IsAbs(s) {
		return filepath.Clean(s)
	}
	return filepath.Join(d.dir, s)
}

func (d *decoder) config(root *yaml.Node) *Config {
	cfg := &Config{Cluster: Cluster{AllowClusterScoped: true}}
	var reposNode *yaml.Node
	d.fields(root, "", fieldSet{
		"repositories": func(v *yaml.Node, field string) {
			reposNode = v
			cfg.Repositories = d.repositories(v, field)
		},
		"cluster": func(v *yaml.Node, field string) { cfg.Cluster = d.cluster(v, field) },
		"notifications": func(v *yaml.Node, field string) {
			cfg.Notifications = d.notifications(v, field)
		},
	})
	if len(cfg.Repositories) == 0 && len(d.errs) == 0 {
		at := root
		if reposNode != nil {
			at = reposNode
		}
		d.errorf(at, "repositories", "at least one repository is required")
	}
	return cfg
}

func (d *decoder) cluster(n *yaml.Node, field string) Cluster {
	c := Cluster{AllowClusterScoped: true}
	d.fields(n, field, fieldSet{
		"kubeconfig": func(v *yaml.Node, f string) {
			if d.str(v, f) != "" {
				c.Kubeconfig = d.filePath(v, f)
			}
		},
		"allowClusterScoped": func(v *yaml.Node, f string) { c.AllowClusterScoped = d.boolean(v, f) },
	})
	return c
}
