package manifests

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Bounds on what kudod reads from a repository (docs/design.md, Limits): a pull request can
// add any file, and the daemon reads every new commit.
const (
	// DefaultMaxInstanceFileSize bounds an instance file: the API server stores objects up to
	// about 1.5 MiB, and an Instance holds the file's parameters.
	DefaultMaxInstanceFileSize = 512 << 10
	// MaxPackageFileSize bounds each file of a package (operator.yaml, params.yaml, a template).
	MaxPackageFileSize = 1 << 20
	// MaxPackageSize bounds the files of a package together.
	MaxPackageSize = 16 << 20
	// maxYAMLDepth bounds how deeply an instance file or a package file nests.
	maxYAMLDepth = 64
	// maxYAMLNodes bounds the nodes of a YAML document with its aliases expanded: a few
	// anchors referring to each other expand exponentially ("billion laughs").
	maxYAMLNodes = 100_000
)

// errTooLarge is a file over its size limit, found before it is read.
type errTooLarge struct {
	size, limit int64
}

func (e *errTooLarge) Error() string {
	if e.size < 0 {
		return fmt.Sprintf("the file is larger than the %s limit", byteSize(e.limit))
	}
	return fmt.Sprintf("the file is %s, more than the %s limit", byteSize(e.size), byteSize(e.limit))
}

// readFileBounded reads a regular file of at most limit bytes. A larger file is refused from
// its size before it is read, and the read stops at the limit should the file have grown.
func readFileBounded(fsys fs.FS, name string, limit int64) ([]byte, error) {
	fi, err := fs.Stat(fsys, name)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file (%s)", fi.Mode().Type())
	}
	if fi.Size() > limit {
		return nil, &errTooLarge{size: fi.Size(), limit: limit}
	}
	if rf, ok := fsys.(fs.ReadFileFS); ok {
		// One read of a file whose size is known (a git blob, a local file); a file that grew
		// since is still caught.
		data, err := rf.ReadFile(name)
		if err == nil && int64(len(data)) > limit {
			return nil, &errTooLarge{size: int64(len(data)), limit: limit}
		}
		return data, err
	}
	f, err := fsys.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, &errTooLarge{size: -1, limit: limit}
	}
	return data, nil
}

// checkEncoding refuses UTF-16 and UTF-32 files, which YAML allows: kudod reads YAML as
// UTF-8, and an Instance in UTF-16 would not be recognised as one.
func checkEncoding(file string, data []byte) *Finding {
	for _, bom := range [][]byte{{0xff, 0xfe}, {0xfe, 0xff}, {0, 0, 0xfe, 0xff}} {
		if bytes.HasPrefix(data, bom) {
			f := errorf(file, 1, "the file is UTF-16 or UTF-32: kudod reads YAML as UTF-8")
			return &f
		}
	}
	return nil
}

// checkText finds what YAML readers report without a line, or not at all: UTF-16 and UTF-32
// files, invalid UTF-8 and control characters such as NUL.
func checkText(file string, data []byte) *Finding {
	if f := checkEncoding(file, data); f != nil {
		return f
	}
	line := 1
	for i := 0; i < len(data); {
		c := data[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '\n':
				line++
			case c < 0x20 && c != '\t' && c != '\r', c == 0x7f:
				f := errorf(file, line, "control character %q in the file", c)
				return &f
			}
			i++
			continue
		}
		r, size := utf8.DecodeRune(data[i:])
		if r == utf8.RuneError && size <= 1 {
			f := errorf(file, line, "invalid UTF-8 (byte 0x%02x)", c)
			return &f
		}
		i += size
	}
	return nil
}

// checkYAML checks a YAML document kudod reads: nesting at most maxYAMLDepth deep, aliases
// expanding to at most maxYAMLNodes nodes and, with noDuplicates, no mapping holding a key
// twice (yaml.v3 keeps both in a node tree, and readers take the first: a second `namespace:`
// would be silently ignored).
func checkYAML(file string, doc *yaml.Node, noDuplicates bool) Findings {
	c := yamlChecker{file: file, noDuplicates: noDuplicates}
	if _, err := c.walk(doc, 1); err != nil {
		var f *Finding
		if errors.As(err, &f) {
			return append(c.findings, *f)
		}
		return append(c.findings, errorf(file, doc.Line, "%v", err))
	}
	return c.findings
}

// CheckYAML checks a YAML document rendered from a template that kudod reads as data (a
// KudoOperator parameterFile) as checkYAML checks instance files: no duplicate keys, nesting
// and alias expansion bounded. The error is the first problem, naming file and line.
func CheckYAML(file string, doc *yaml.Node) error {
	if fs := checkYAML(file, doc, true); len(fs) > 0 {
		return fs[0]
	}
	return nil
}

// duplicates reports the keys a mapping holds twice. Small mappings, most of them, are
// compared pairwise rather than through a map.
func (c *yamlChecker) duplicates(n *yaml.Node) {
	report := func(k *yaml.Node, first int) {
		c.findings = append(c.findings, errorf(c.file, k.Line, "duplicate key %q (first at line %d)", k.Value, first))
	}
	plain := func(k *yaml.Node) bool { return k.Kind == yaml.ScalarNode && k.Value != "<<" }
	if len(n.Content) <= 32 {
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if !plain(k) {
				continue
			}
			for j := 0; j < i; j += 2 {
				if p := n.Content[j]; plain(p) && p.Value == k.Value {
					report(k, p.Line)
					break
				}
			}
		}
		return
	}
	seen := make(map[string]int, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := n.Content[i]
		if !plain(k) {
			continue
		}
		if first, dup := seen[k.Value]; dup {
			report(k, first)
			continue
		}
		seen[k.Value] = k.Line
	}
}

type yamlChecker struct {
	file         string
	noDuplicates bool
	findings     Findings
	// expanded counts the nodes of each node with its aliases expanded, so an alias is
	// counted without being walked again.
	expanded map[*yaml.Node]int64
}

// walk returns the node's size with aliases expanded; an error stops the walk.
func (c *yamlChecker) walk(n *yaml.Node, depth int) (int64, error) {
	if n == nil {
		return 0, nil
	}
	if depth > maxYAMLDepth {
		f := errorf(c.file, n.Line, "the YAML nests deeper than %d levels", maxYAMLDepth)
		return 0, &f
	}
	if n.Kind == yaml.AliasNode {
		if size, ok := c.expanded[n.Alias]; ok {
			return size, nil
		}
		// An alias to a node not walked yet: its anchor encloses the alias (YAML defines
		// anchors before aliases), which yaml.v3 refuses when decoding; count it as one.
		return 1, nil
	}
	size := int64(1)
	if n.Kind == yaml.MappingNode && c.noDuplicates {
		c.duplicates(n)
	}
	for _, child := range n.Content {
		s, err := c.walk(child, depth+1)
		if err != nil {
			return 0, err
		}
		size = addSat(size, s)
		if size > maxYAMLNodes {
			f := errorf(c.file, n.Line, "the YAML expands to more than %d nodes through its aliases", maxYAMLNodes)
			return 0, &f
		}
	}
	if n.Anchor != "" {
		if c.expanded == nil {
			c.expanded = map[*yaml.Node]int64{}
		}
		c.expanded[n] = size
	}
	return size, nil
}
