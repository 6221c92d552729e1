package manifests

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"sync"

	"github.com/Masterminds/semver/v3"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"gopkg.in/yaml.v3"
)

// IgnoreFileName is the gitignore-syntax file at the repository root that excludes paths.
const IgnoreFileName = ".kudodignore"

// Index is what one repository snapshot declares: its packages and its instances, with every
// problem found. It is built from a file tree and never touches a cluster.
type Index struct {
	// Packages that loaded and verified, sorted by name and version.
	Packages []*Package
	// BrokenPackages are package directories that failed to load or verify.
	BrokenPackages map[string]Findings
	// Instances that are valid, sorted by key.
	Instances []*Instance
	// Invalid instances: their namespace and name are known, but something else is wrong.
	Invalid []*Instance
	// InvalidFindings holds the problems of each invalid instance, by key.
	InvalidFindings map[string]Findings
	// BrokenFiles are instance files that could not be read at all (malformed YAML), by path.
	// Instances that came from them in an older commit are rejected, never removed.
	BrokenFiles map[string]Findings
	// Findings are every error and warning, sorted.
	Findings Findings

	// files is what each instance file held, by path, for a later index of the same
	// repository (IndexOptions.Previous).
	files map[string]*indexedFile
}

// IndexOptions tune IndexRepository.
type IndexOptions struct {
	// Path is the folder whose instance files count ("." or empty: the whole repository).
	// Packages are found anywhere in the repository, so several paths (clusters/prod,
	// clusters/dev) can share one operators/ folder.
	Path string
	// Cache reuses package verification across snapshots, keyed by package digest.
	Cache *PackageCache
	// Previous is an index of an earlier commit of the same repository, or nil: an instance
	// file whose content is the same (the same git blob) is not read and parsed again, and its
	// instances are shared with Previous when they resolve to the same package, so that a
	// commit costs in proportion to what it changed and the indexes a store keeps share what
	// they have in common (docs/scaling.md).
	Previous *Index
}

// FileHasher is a file system that knows a hash of each file's content without reading it:
// git's blob hash in sources' snapshots. IndexRepository hashes what it reads otherwise.
type FileHasher interface {
	FileHash(name string) (string, error)
}

// PackageCache remembers verified packages by digest, so a poll that sees the same package
// again neither re-renders nor re-parses its templates. Safe for concurrent use.
type PackageCache struct {
	mu       sync.Mutex
	packages map[string]*cachedPackage
}

type cachedPackage struct {
	pkg      *Package
	findings Findings
}

// NewPackageCache returns an empty cache.
func NewPackageCache() *PackageCache {
	return &PackageCache{packages: map[string]*cachedPackage{}}
}

// verified returns the cached package with the same digest and directory, or verifies p and caches it.
func (c *PackageCache) verified(p *Package) (*Package, Findings) {
	if c == nil {
		return p, Verify(p)
	}
	key := p.Digest + "\x00" + p.Dir
	c.mu.Lock()
	if e, ok := c.packages[key]; ok {
		c.mu.Unlock()
		return e.pkg, e.findings
	}
	c.mu.Unlock()
	fs := Verify(p)
	c.mu.Lock()
	c.packages[key] = &cachedPackage{pkg: p, findings: fs}
	c.mu.Unlock()
	return p, fs
}

// Get returns a cached package by digest and directory, if present.
func (c *PackageCache) Get(digest, dir string) *Package {
	if c == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.packages[digest+"\x00"+dir]; ok && !e.findings.HasErrors() {
		return e.pkg
	}
	return nil
}

// IndexRepository reads every package (a directory holding operator.yaml) of a repository tree
// and every Instance document (YAML outside package directories with kind Instance) under
// opts.Path, honouring .kudodignore, and validates the instances against their packages. The error is
// only for a tree that cannot be read at all; everything else is in the Index's findings.
func IndexRepository(fsys fs.FS, opts IndexOptions) (*Index, error) {
	root := path.Clean(opts.Path)
	if root == "" || root == "/" {
		root = "."
	}
	idx := &Index{
		BrokenPackages:  map[string]Findings{},
		InvalidFindings: map[string]Findings{},
		BrokenFiles:     map[string]Findings{},
	}
	ignore, err := readIgnore(fsys)
	if err != nil {
		return nil, err
	}
	if _, err := fs.Stat(fsys, root); err != nil {
		return nil, fmt.Errorf("read repository tree at %s: %w", root, err)
	}
	underRoot := func(p string) bool { return root == "." || p == root || strings.HasPrefix(p, root+"/") }
	var pkgDirs, instanceFiles []string
	err = fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p == "." {
				return err
			}
			idx.Findings = append(idx.Findings, errorf(p, 0, "cannot read: %v", unwrapPathError(err)))
			return nil
		}
		parts := strings.Split(p, "/")
		if p != "." && ignore != nil && ignore.Match(parts, d.IsDir()) {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			// Hidden folders (.git, .github, ...) hold CI and tooling files, never instances.
			if p != "." && strings.HasPrefix(d.Name(), ".") {
				return fs.SkipDir
			}
			if _, err := fs.Stat(fsys, joinPath(p, OperatorFileName)); err == nil {
				pkgDirs = append(pkgDirs, p)
				return fs.SkipDir
			}
			return nil
		}
		if underRoot(p) && (strings.HasSuffix(p, ".yaml") || strings.HasSuffix(p, ".yml")) {
			instanceFiles = append(instanceFiles, p)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read repository tree at %s: %w", root, err)
	}

	byName := idx.loadPackages(fsys, pkgDirs, opts.Cache)
	var prev map[string]*indexedFile
	if opts.Previous != nil {
		prev = opts.Previous.files
	}
	idx.files = make(map[string]*indexedFile, len(instanceFiles))
	var all []*indexedFile
	for _, f := range instanceFiles {
		file := readInstanceFile(fsys, f, prev[f])
		idx.files[f] = file
		idx.addFile(file)
		all = append(all, file)
	}
	idx.resolve(all, byName)
	idx.Findings.Sort()
	return idx, nil
}

func readIgnore(fsys fs.FS) (gitignore.Matcher, error) {
	data, err := fs.ReadFile(fsys, IgnoreFileName)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", IgnoreFileName, err)
	}
	var ps []gitignore.Pattern
	for _, l := range strings.Split(string(data), "\n") {
		l = strings.TrimRight(l, "\r")
		if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "#") {
			continue
		}
		ps = append(ps, gitignore.ParsePattern(l, nil))
	}
	return gitignore.NewMatcher(ps), nil
}

func (idx *Index) loadPackages(fsys fs.FS, dirs []string, cache *PackageCache) map[string][]*Package {
	byName := map[string][]*Package{}
	for _, dir := range dirs {
		p, err := Load(fsys, dir)
		if err != nil {
			var fs Findings
			if !errors.As(err, &fs) {
				fs = Findings{errorf(joinPath(dir, OperatorFileName), 0, "%v", err)}
			}
			idx.BrokenPackages[dir] = fs
			idx.Findings = append(idx.Findings, fs...)
			continue
		}
		p, fs := cache.verified(p)
		idx.Findings = append(idx.Findings, fs...)
		if fs.HasErrors() {
			idx.BrokenPackages[dir] = fs.Errors()
			// Broken packages still resolve by name and version, so their instances are
			// rejected with the package's error rather than "unknown operator".
		}
		byName[p.Name] = append(byName[p.Name], p)
	}
	for _, ps := range byName {
		sort.Slice(ps, func(i, j int) bool { return lessVersion(ps[i], ps[j]) })
		for _, p := range ps {
			if _, broken := idx.BrokenPackages[p.Dir]; !broken {
				idx.Packages = append(idx.Packages, p)
			}
		}
	}
	sort.Slice(idx.Packages, func(i, j int) bool {
		a, b := idx.Packages[i], idx.Packages[j]
		if a.Name != b.Name {
			return a.Name < b.Name
		}
		return lessVersion(a, b)
	})
	return byName
}

// lessVersion orders packages by operatorVersion, then appVersion, as semver where possible.
func lessVersion(a, b *Package) bool {
	if c := compareVersions(a.OperatorVersion, b.OperatorVersion); c != 0 {
		return c < 0
	}
	if c := compareVersions(a.AppVersion, b.AppVersion); c != 0 {
		return c < 0
	}
	return a.Dir < b.Dir
}

func compareVersions(a, b string) int {
	va, errA := semver.NewVersion(a)
	vb, errB := semver.NewVersion(b)
	if errA == nil && errB == nil {
		return va.Compare(vb)
	}
	return strings.Compare(a, b)
}

// indexedFile is what one instance file holds, parsed. Its instances are templates: the
// index resolves copies of them, so that a later index may share them (IndexOptions.Previous).
type indexedFile struct {
	path string
	// hash identifies the content ("" when the file could not be read).
	hash string
	// parsed are the Instance documents that parsed, in file order.
	parsed []*Instance
	// resolved[i] is parsed[i] resolved in the index that holds this file (nil: invalid there).
	resolved []*Instance
	// invalid are the documents that did not parse, with their findings.
	invalid []invalidInstance
	// broken are findings against the file itself (unreadable, malformed YAML, unsupported
	// apiVersion).
	broken Findings
}

type invalidInstance struct {
	in       *Instance
	findings Findings
}

// readInstanceFile reads the Instance documents of one YAML file; documents of other kinds
// are not kudod's business and are skipped. A file with the content of prev's is not read
// again: prev's parse is reused.
func readInstanceFile(fsys fs.FS, file string, prev *indexedFile) *indexedFile {
	hash := ""
	if h, ok := fsys.(FileHasher); ok {
		if v, err := h.FileHash(file); err == nil {
			hash = "git:" + v
		}
	}
	if hash != "" && prev != nil && prev.hash == hash {
		return &indexedFile{path: file, hash: hash, parsed: prev.parsed, resolved: prev.resolved, invalid: prev.invalid, broken: prev.broken}
	}
	data, err := fs.ReadFile(fsys, file)
	if err != nil {
		return &indexedFile{path: file, broken: Findings{errorf(file, 0, "cannot read: %v", unwrapPathError(err))}}
	}
	if hash == "" {
		sum := sha256.Sum256(data)
		hash = "sha256:" + hex.EncodeToString(sum[:])
		if prev != nil && prev.hash == hash {
			return &indexedFile{path: file, hash: hash, parsed: prev.parsed, resolved: prev.resolved, invalid: prev.invalid, broken: prev.broken}
		}
	}
	out := &indexedFile{path: file, hash: hash}
	// Most YAML in a GitOps repository is not an Instance: skip files that cannot hold one.
	if !bytes.Contains(data, []byte("Instance")) {
		return out
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			out.broken = yamlError(file, err)
			break
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue
		}
		m := doc.Content[0]
		kind := mappingValue(m, "kind")
		if kind == nil || kind.Value != InstanceKind {
			continue
		}
		av := ""
		if v := mappingValue(m, "apiVersion"); v != nil {
			av = v.Value
		}
		if av != InstanceAPIVersion && av != KUDOInstanceAPIVersion {
			if strings.Contains(av, "kudo") {
				out.broken = append(out.broken, errorf(file, keyLine(m, "apiVersion", m.Line), "Instance with unsupported apiVersion %q (use %s, or KUDO's %s)", av, InstanceAPIVersion, KUDOInstanceAPIVersion))
			}
			continue
		}
		in, fs := parseInstance(file, m, av)
		if fs.HasErrors() {
			out.invalid = append(out.invalid, invalidInstance{in, fs})
			continue
		}
		out.parsed = append(out.parsed, in)
	}
	return out
}

// addFile records a file's findings and invalid instances in the index.
func (idx *Index) addFile(f *indexedFile) {
	if len(f.broken) > 0 {
		idx.BrokenFiles[f.path] = append(idx.BrokenFiles[f.path], f.broken...)
		idx.Findings = append(idx.Findings, f.broken...)
	}
	for _, iv := range f.invalid {
		idx.invalid(iv.in, iv.findings)
	}
}

func (idx *Index) invalid(in *Instance, fs Findings) {
	if in.Name == "" || in.Namespace == "" {
		// Without an identity the instance cannot be told apart: the file is broken.
		idx.BrokenFiles[in.File] = append(idx.BrokenFiles[in.File], fs.Errors()...)
	} else {
		key := in.Key()
		if _, dup := idx.InvalidFindings[key]; !dup {
			idx.Invalid = append(idx.Invalid, in)
		}
		idx.InvalidFindings[key] = append(idx.InvalidFindings[key], fs.Errors()...)
	}
	idx.Findings = append(idx.Findings, fs...)
}

// resolve finds each instance's package, validates parameters and schedules against it, and
// checks that (namespace, name) is unique across the repository. It resolves a copy of each
// parsed instance, or reuses the copy an earlier index resolved to the same package.
func (idx *Index) resolve(files []*indexedFile, byName map[string][]*Package) {
	seen := map[string]*Instance{}
	for _, in := range idx.Invalid {
		seen[in.Key()] = in
	}
	for _, file := range files {
		prev := file.resolved
		file.resolved = make([]*Instance, len(file.parsed))
		for i, in := range file.parsed {
			if first, dup := seen[in.Key()]; dup {
				f := errorf(in.File, in.line("metadata.name"), "instance %s is declared twice (also at %s:%d)", in.Key(), first.File, first.line("metadata.name"))
				idx.invalid(in, Findings{f})
				continue
			}
			seen[in.Key()] = in
			if i < len(prev) && prev[i] != nil {
				if p, f := resolvePackage(in, byName); f == nil && p == prev[i].Package {
					if _, broken := idx.BrokenPackages[p.Dir]; !broken {
						file.resolved[i] = prev[i]
						idx.Instances = append(idx.Instances, prev[i])
						continue
					}
				}
			}
			c := *in
			fs := idx.validateInstance(&c, byName)
			if fs.HasErrors() {
				idx.invalid(&c, fs)
				continue
			}
			file.resolved[i] = &c
			idx.Instances = append(idx.Instances, &c)
		}
	}
	sort.Slice(idx.Instances, func(i, j int) bool { return idx.Instances[i].Key() < idx.Instances[j].Key() })
	sort.Slice(idx.Invalid, func(i, j int) bool { return idx.Invalid[i].Key() < idx.Invalid[j].Key() })
}

func (idx *Index) validateInstance(in *Instance, byName map[string][]*Package) Findings {
	p, f := resolvePackage(in, byName)
	if f != nil {
		return Findings{*f}
	}
	if errs, broken := idx.BrokenPackages[p.Dir]; broken {
		return Findings{errorf(in.File, in.line("spec.operator"), "package %s is broken: %s", p.ID(), errs[0].Error())}
	}
	in.Package = p
	in.Operator.Name, in.Operator.Version, in.Operator.AppVersion = p.Name, p.OperatorVersion, p.AppVersion
	var fs Findings
	names := make([]string, 0, len(in.Parameters))
	for n := range in.Parameters {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		v := in.Parameters[n]
		par := p.Parameter(n)
		if par == nil {
			hint := ""
			if s := p.similarParameter(n); s != "" {
				hint = " (did you mean " + s + "?)" // bare, as the key is written in YAML
			}
			fs = append(fs, errorf(in.File, in.ParameterLines[n], "spec.parameters.%s: unknown parameter for %s %s%s", n, p.Name, p.OperatorVersion, hint))
			continue
		}
		if err := par.ValidateValue(v); err != nil {
			fs = append(fs, errorf(in.File, in.ParameterLines[n], "spec.parameters.%s: %s", n, maskError(n, err)))
		}
	}
	for _, par := range p.Parameters {
		if _, given := in.Parameters[par.Name]; !given && par.Required && par.Default == nil {
			fs = append(fs, errorf(in.File, in.line("spec.operator"), "parameter %s of %s %s is required and has no default: set spec.parameters.%s", par.Name, p.Name, p.OperatorVersion, par.Name))
		}
	}
	for i, sc := range in.Schedules {
		if sc.Plan != "" && sc.Plan != PlanCleanup && !p.HasPlan(sc.Plan) {
			field := fmt.Sprintf("spec.schedules[%d]", i)
			fs = append(fs, errorf(in.File, in.line(field+".plan"), "%s.plan: %s %s has no plan %q (plans: %s)", field, p.Name, p.OperatorVersion, sc.Plan, strings.Join(p.PlanNames(), ", ")))
		}
	}
	return fs
}

// maskError keeps a sensitive parameter's value out of a message.
func maskError(name string, err error) string {
	if IsSensitive(name) {
		return "the value is not valid for the parameter's type (value masked)"
	}
	return err.Error()
}

// resolvePackage finds the package an instance names: an exact version (and appVersion) when
// given, else the highest operatorVersion.
func resolvePackage(in *Instance, byName map[string][]*Package) (*Package, *Finding) {
	line := in.line("spec.operator")
	if in.Operator.Version == kudoOperatorVersionMarker {
		for _, ps := range byName {
			for _, p := range ps {
				if p.ID() == in.Operator.Name {
					return p, nil
				}
			}
		}
		f := errorf(in.File, line, "spec.operatorVersion.name: no package %q (<name>-<appVersion>-<operatorVersion>) in the repository", in.Operator.Name)
		return nil, &f
	}
	ps := byName[in.Operator.Name]
	if len(ps) == 0 {
		f := errorf(in.File, line, "spec.operator.name: unknown operator %q: the repository has no package of that name", in.Operator.Name)
		return nil, &f
	}
	var match []*Package
	for _, p := range ps {
		if in.Operator.Version != "" && compareVersions(p.OperatorVersion, in.Operator.Version) != 0 {
			continue
		}
		if in.Operator.AppVersion != "" && compareVersions(p.AppVersion, in.Operator.AppVersion) != 0 {
			continue
		}
		match = append(match, p)
	}
	if len(match) == 0 {
		var have []string
		for _, p := range ps {
			have = append(have, versionLabel(p))
		}
		f := errorf(in.File, line, "spec.operator: %s has no version %s (the repository has %s)", in.Operator.Name, versionLabel(&Package{OperatorVersion: in.Operator.Version, AppVersion: in.Operator.AppVersion}), strings.Join(have, ", "))
		return nil, &f
	}
	if in.Operator.Version != "" && len(match) > 1 && in.Operator.AppVersion == "" {
		var have []string
		for _, p := range match {
			have = append(have, versionLabel(p))
		}
		f := errorf(in.File, line, "spec.operator: %s version %s is ambiguous (%s): set spec.operator.appVersion", in.Operator.Name, in.Operator.Version, strings.Join(have, ", "))
		return nil, &f
	}
	// ps is sorted ascending: the last match is the highest version.
	return match[len(match)-1], nil
}

func versionLabel(p *Package) string {
	v := p.OperatorVersion
	if v == "" {
		v = "(any)"
	}
	if p.AppVersion != "" {
		return v + " (appVersion " + p.AppVersion + ")"
	}
	return v
}

// Instance returns the valid instance with the key "<namespace>/<name>", or nil.
func (idx *Index) Instance(key string) *Instance {
	i := sort.Search(len(idx.Instances), func(i int) bool { return idx.Instances[i].Key() >= key })
	if i < len(idx.Instances) && idx.Instances[i].Key() == key {
		return idx.Instances[i]
	}
	return nil
}

// Package returns the package with the name and operatorVersion (and appVersion if not
// empty), or nil: how KudoOperator tasks find their child packages.
func (idx *Index) Package(name, operatorVersion, appVersion string) *Package {
	var found *Package
	for _, p := range idx.Packages {
		if p.Name != name {
			continue
		}
		if operatorVersion != "" && compareVersions(p.OperatorVersion, operatorVersion) != 0 {
			continue
		}
		if appVersion != "" && compareVersions(p.AppVersion, appVersion) != 0 {
			continue
		}
		found = p // sorted ascending: keep the highest
	}
	return found
}
