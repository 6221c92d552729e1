package manifests

import (
	"fmt"
	"sort"
	"strings"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// instanceDocument says whether a YAML document is an Instance kudod reads: it returns the
// document's apiVersion, or "" when the document is none of kudod's business. A document that
// looks meant for kudod but is not one kudod reads (kudod.dev/v2, kind: instance, a homoglyph)
// is a finding: otherwise the instance would silently vanish from the repository, and a
// commit "removing" it would clean it up.
func instanceDocument(file string, m *yaml.Node) (string, *Finding) {
	kind, av := scalarValue(m, "kind"), scalarValue(m, "apiVersion")
	ours := av == InstanceAPIVersion || av == KUDOInstanceAPIVersion
	looksOurs := ours || strings.Contains(strings.ToLower(av), "kudo") || !isASCII(av)
	operatorRef := mappingValue(mappingValue(m, "spec"), "operator") != nil || mappingValue(mappingValue(m, "spec"), "operatorVersion") != nil
	instanceLike := strings.EqualFold(kind, InstanceKind) || (!isASCII(kind) && operatorRef)
	avLine, kindLine := keyLine(m, "apiVersion", m.Line), keyLine(m, "kind", m.Line)
	var f Finding
	switch {
	case kind == InstanceKind && ours:
		return av, nil
	case kind == InstanceKind && (looksOurs || operatorRef):
		f = errorf(file, avLine, "Instance with unsupported apiVersion %q (use %s, or KUDO's %s)", av, InstanceAPIVersion, KUDOInstanceAPIVersion)
	case instanceLike && (looksOurs || operatorRef):
		f = errorf(file, kindLine, "kind %q is not %s: kudod reads kind %s", kind, InstanceKind, InstanceKind)
	case strings.HasPrefix(av, "kudod.dev/"):
		f = errorf(file, kindLine, "%s documents are kind %s, not %q", av, InstanceKind, kind)
	case !isASCII(av) && operatorRef:
		f = errorf(file, avLine, "apiVersion %q has characters that are not ASCII (use %s)", av, InstanceAPIVersion)
	default:
		return "", nil
	}
	return "", &f
}

// nestedInstance finds an Instance inside a list, at the top of a document or in a kubectl
// List's items: kudod reads Instances as documents of their own, so it would be ignored.
func nestedInstance(file string, doc *yaml.Node) *Finding {
	if len(doc.Content) == 0 {
		return nil
	}
	root := doc.Content[0]
	list := root
	if root.Kind == yaml.MappingNode {
		list = mappingValue(root, "items")
	}
	if list == nil || list.Kind != yaml.SequenceNode {
		return nil
	}
	for _, item := range list.Content {
		if item.Kind != yaml.MappingNode {
			continue
		}
		av, meant := instanceDocument(file, item)
		if av != "" || meant != nil {
			f := errorf(file, item.Line, "an Instance inside a list: kudod reads each Instance as a YAML document of its own (separate them with ---)")
			return &f
		}
	}
	return nil
}

// scalarValue is the value of a scalar field of a mapping ("" when absent or not a scalar).
func scalarValue(m *yaml.Node, key string) string {
	if v := mappingValue(m, key); v != nil && v.Kind == yaml.ScalarNode {
		return v.Value
	}
	return ""
}

func isASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}

// dropInstance removes a valid instance that turned out to be declared twice: neither
// declaration is taken (the commit is held).
func (idx *Index) dropInstance(key string) {
	out := idx.Instances[:0]
	for _, in := range idx.Instances {
		if in.Key() != key {
			out = append(out, in)
		}
	}
	idx.Instances = out
}

// hold collects the findings that hold the whole commit: every unreadable file, and every
// instance declared twice (docs/design.md, Plan selection).
func (idx *Index) hold() {
	for _, fs := range idx.BrokenFiles {
		idx.Held = append(idx.Held, fs.Errors()...)
	}
	idx.Held.Sort()
}

// kudoOperatorCycles marks the packages whose KudoOperator tasks lead back to themselves as
// broken: each instance would create the next one's without end.
func (idx *Index) kudoOperatorCycles(byName map[string][]*Package) {
	var all []*Package
	for _, ps := range byName {
		all = append(all, ps...)
	}
	cycles := PackageCycles(all)
	if len(cycles) == 0 {
		return
	}
	for p, fs := range cycles {
		idx.BrokenPackages[p.Dir] = append(idx.BrokenPackages[p.Dir], fs...)
		idx.Findings = append(idx.Findings, fs...)
	}
	kept := idx.Packages[:0]
	for _, p := range idx.Packages {
		if _, broken := idx.BrokenPackages[p.Dir]; !broken {
			kept = append(kept, p)
		}
	}
	idx.Packages = kept
}

// PackageCycles finds the packages whose KudoOperator tasks, through the packages they name
// (resolved among pkgs as the daemon resolves them: the highest version matching), lead back
// to themselves. Each such package gets a finding at its task's line naming the cycle. A
// package naming itself is Verify's finding.
func PackageCycles(pkgs []*Package) map[*Package]Findings {
	byName := map[string][]*Package{}
	for _, p := range pkgs {
		byName[p.Name] = append(byName[p.Name], p)
	}
	for _, ps := range byName {
		sort.Slice(ps, func(i, j int) bool { return lessVersion(ps[i], ps[j]) })
	}
	type edge struct {
		task *Task
		to   *Package
	}
	edges := map[*Package][]edge{}
	for _, p := range pkgs {
		for i := range p.Tasks {
			t := &p.Tasks[i]
			if t.Kind != TaskKudoOperator || t.Spec.Package == "" {
				continue
			}
			if child := resolveChild(byName[t.Spec.Package], t.Spec.OperatorVersion, t.Spec.AppVersion); child != nil && child != p {
				edges[p] = append(edges[p], edge{task: t, to: child})
			}
		}
	}
	out := map[*Package]Findings{}
	// A depth-first search from each package: the path from the start back to it is a cycle.
	// Packages are few (tens), so the search per start is cheap.
	for _, start := range pkgs {
		var path []edge
		visited := map[*Package]bool{}
		var dfs func(p *Package) bool
		dfs = func(p *Package) bool {
			for _, e := range edges[p] {
				path = append(path, e)
				if e.to == start {
					return true
				}
				if !visited[e.to] {
					visited[e.to] = true
					if dfs(e.to) {
						return true
					}
				}
				path = path[:len(path)-1]
			}
			return false
		}
		if !dfs(start) {
			continue
		}
		names := []string{versionedName(start)}
		for _, e := range path {
			names = append(names, versionedName(e.to))
		}
		out[start] = Findings{errorf(start.OperatorFilePath(), path[0].task.Line, "KudoOperator task %q makes a cycle of packages: %s (each instance would create the next one's without end)", path[0].task.Name, strings.Join(names, " → "))}
	}
	return out
}

// resolveChild picks the package a KudoOperator task names among the versions of one name,
// sorted ascending, as Index.Package does.
func resolveChild(ps []*Package, operatorVersion, appVersion string) *Package {
	var found *Package
	for _, p := range ps {
		if operatorVersion != "" && compareVersions(p.OperatorVersion, operatorVersion) != 0 {
			continue
		}
		if appVersion != "" && compareVersions(p.AppVersion, appVersion) != 0 {
			continue
		}
		found = p
	}
	return found
}

func versionedName(p *Package) string {
	return fmt.Sprintf("%s %s", p.Name, p.OperatorVersion)
}
