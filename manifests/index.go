package manifests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
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
	// Encrypted are SOPS-encrypted files read without a Decrypter, by path: NoKey. They are
	// reported, not failed (`kudod plan` without a key).
	Encrypted map[string]string
	// DecryptErrors are the files a Decrypter could not decrypt (also in Invalid or BrokenFiles).
	DecryptErrors Findings
	// Held are the repository's findings that hold the whole commit: unreadable instance
	// files (BrokenFiles) and instances declared twice (docs/design.md, Plan selection).
	Held Findings
	// Findings are every error and warning, sorted.
	Findings Findings

	decrypter Decrypter
	// files is what each instance file held, in the order the walk found them, for a later
	// index of the same repository (IndexOptions.Previous).
	files []*indexedFile
}

// IndexOptions tune IndexRepository.
type IndexOptions struct {
	// Path is the folder whose instance files count ("." or empty: the whole repository).
	// Packages are found anywhere in the repository, so several paths (clusters/prod,
	// clusters/dev) can share one operators/ folder.
	Path string
	// Cache reuses package verification across snapshots, keyed by package digest.
	Cache *PackageCache
	// Decrypter decrypts SOPS-encrypted instance files; without one they are listed in
	// Index.Encrypted (docs/secrets.md).
	Decrypter Decrypter
	// MaxInstanceFileSize bounds each YAML file under Path (default
	// DefaultMaxInstanceFileSize): a larger file is an error, refused before it is read.
	MaxInstanceFileSize int64
	// RenderLimits bound verifying each package (zero fields: the defaults).
	RenderLimits RenderLimits
	// Previous is an index of an earlier commit of the same repository, or nil: an instance
	// file whose content is the same (the same git blob) is not read and parsed again, and its
	// instances are shared with Previous when they resolve to the same package, so that a
	// commit costs in proportion to what it changed and the indexes a store keeps share what
	// they have in common (docs/scaling.md). Encrypted files are always read and decrypted
	// again, with the Decrypter's keys as they are now.
	Previous *Index
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

// verified returns the cached package with the same digest and directory, or verifies p and
// caches it. A verification cut short by ctx's end is not cached.
func (c *PackageCache) verified(ctx context.Context, p *Package) (*Package, Findings) {
	if c == nil {
		return p, VerifyContext(ctx, p)
	}
	key := p.Digest + "\x00" + p.Dir
	c.mu.Lock()
	if e, ok := c.packages[key]; ok {
		c.mu.Unlock()
		return e.pkg, e.findings
	}
	c.mu.Unlock()
	fs := VerifyContext(ctx, p)
	if ctx.Err() != nil {
		return p, fs
	}
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
	return IndexRepositoryContext(context.Background(), fsys, opts)
}

// IndexRepositoryContext is IndexRepository under ctx: verifying packages renders their
// templates, each package within opts.RenderLimits, and stops when ctx ends.
func IndexRepositoryContext(ctx context.Context, fsys fs.FS, opts IndexOptions) (*Index, error) {
	if opts.MaxInstanceFileSize <= 0 {
		opts.MaxInstanceFileSize = DefaultMaxInstanceFileSize
	}
	ctx = WithRenderLimits(ctx, opts.RenderLimits)
	root := path.Clean(opts.Path)
	if root == "" || root == "/" {
		root = "."
	}
	idx := &Index{
		BrokenPackages:  map[string]Findings{},
		InvalidFindings: map[string]Findings{},
		BrokenFiles:     map[string]Findings{},
		Encrypted:       map[string]string{},
		decrypter:       opts.Decrypter,
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
		if p != "." && ignore != nil && ignore.Match(strings.Split(p, "/"), d.IsDir()) {
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

	byName := idx.loadPackages(ctx, fsys, pkgDirs, opts.Cache)
	idx.kudoOperatorCycles(byName)
	var prev previousFiles
	if opts.Previous != nil {
		prev.files = opts.Previous.files
	}
	idx.files = make([]*indexedFile, 0, len(instanceFiles))
	for _, f := range instanceFiles {
		idx.files = append(idx.files, idx.readInstanceFile(fsys, f, opts.MaxInstanceFileSize, prev.find(f)))
	}
	idx.resolve(byName)
	idx.hold()
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

func (idx *Index) loadPackages(ctx context.Context, fsys fs.FS, dirs []string, cache *PackageCache) map[string][]*Package {
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
		p, fs := cache.verified(ctx, p)
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

// readInstanceFile reads the Instance documents of one YAML file. Documents of other kinds
// are not kudod's business and are skipped. A file with the content prev read is not read
// again: prev's findings are recorded again and its instances reused (index_reuse.go).
func (idx *Index) readInstanceFile(fsys fs.FS, file string, maxSize int64, prev *indexedFile) *indexedFile {
	hash := fileHash(fsys, file)
	if prev.sameContent(hash, maxSize) {
		return idx.reuse(prev)
	}
	r := &fileReader{idx: idx, rec: &indexedFile{path: file}}
	data, err := readFileBounded(fsys, file, maxSize)
	if err != nil {
		f := errorf(file, 0, "cannot read: %v", unwrapPathError(err))
		if tl := (*errTooLarge)(nil); errors.As(err, &tl) {
			f = errorf(file, 0, "%v for a file under the repository's path (an Instance holds its parameters; the API server stores objects up to about 1.5 MiB)", err)
		}
		r.broken(file, f)
		return r.rec // not reused: read again next time
	}
	if hash.sum == "" {
		hash = hashContent(data)
		if prev.sameContent(hash, maxSize) {
			return idx.reuse(prev)
		}
	}
	r.rec.parsed = r.readInstances(file, data)
	if !r.rec.encrypted {
		r.rec.hash, r.rec.size = hash, int64(len(data))
	}
	return r.rec
}

// readInstances parses the Instance documents of a file read whole, recording its findings in
// the index and in r's record.
func (r *fileReader) readInstances(file string, data []byte) []*Instance {
	idx := r.idx
	var decrypted []map[string]bool
	if IsEncrypted(data) {
		// Decryption depends on the keys available now: an encrypted file is never reused.
		r.rec.encrypted = true
		var ok bool
		if data, decrypted, ok = idx.decryptFile(file, data); !ok {
			return nil
		}
	}
	// Most YAML in a GitOps repository is not an Instance: skip files that cannot hold one
	// ("nstance" also finds a misspelt kind: instance).
	if !bytes.Contains(data, []byte("nstance")) {
		if f := checkEncoding(file, data); f != nil {
			r.broken(file, *f) // UTF-16 would hide an Instance from the check above
		}
		return nil
	}
	if f := checkText(file, data); f != nil {
		r.broken(file, *f)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []*Instance
	for n := 0; ; n++ {
		var doc yaml.Node
		err := dec.Decode(&doc)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			r.brokenYAML(file, yamlError(file, err))
			break
		}
		if f := nestedInstance(file, &doc); f != nil {
			r.broken(file, *f)
			continue
		}
		if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
			continue
		}
		m := doc.Content[0]
		av, meant := instanceDocument(file, m)
		if meant != nil {
			r.broken(file, *meant)
			continue
		}
		if av == "" {
			continue
		}
		if fs := checkYAML(file, m, true); len(fs) > 0 {
			r.broken(file, fs...)
			continue
		}
		in, fs := parseInstance(file, m, av)
		if n < len(decrypted) {
			in.Decrypted = decrypted[n]
		}
		if fs.HasErrors() {
			r.invalid(in, fs)
			continue
		}
		out = append(out, in)
	}
	return out
}

// broken records findings that make a file unreadable.
func (idx *Index) broken(file string, fs ...Finding) {
	idx.BrokenFiles[file] = append(idx.BrokenFiles[file], fs...)
	idx.Findings = append(idx.Findings, fs...)
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
// checks that (namespace, name) is unique across the repository, file by file: the instances
// of reused files count as much as those of files read now.
func (idx *Index) resolve(byName map[string][]*Package) {
	seen := make(map[instanceKey]*Instance, len(idx.Invalid)+len(idx.files))
	for _, in := range idx.Invalid {
		seen[keyOf(in)] = in
	}
	for k, file := range idx.files {
		var resolved []*Instance // nil while each is what file.resolved holds
		for i, in := range file.parsed {
			var got *Instance
			if first, dup := seen[keyOf(in)]; dup {
				f := errorf(in.File, in.line("metadata.name"), "instance %s is declared twice: in %s:%d and here", in.Key(), first.File, first.line("metadata.name"))
				idx.invalid(in, Findings{f})
				idx.Held = append(idx.Held, f)
				idx.dropInstance(in.Key())
			} else {
				seen[keyOf(in)] = in
				got = idx.resolveInstance(in, file.resolvedAt(i), byName)
			}
			if resolved == nil && got != file.resolvedAt(i) {
				resolved = make([]*Instance, len(file.parsed))
				copy(resolved, file.resolved)
			}
			if resolved != nil {
				resolved[i] = got
			}
		}
		if resolved != nil {
			// A record of an earlier index is shared: this index gets its own.
			c := *file
			c.resolved = resolved
			idx.files[k] = &c
		}
	}
	slices.SortFunc(idx.Instances, compareKeys)
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
	names := slices.Sorted(maps.Keys(in.Parameters))
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
		if par.PlanScoped() {
			fs = append(fs, errorf(in.File, in.ParameterLines[n], "spec.parameters.%s: the parameter is plan-scoped: set it for one run (kudod trigger -p, or a schedule's parameters), not in the instance", n))
			continue
		}
		if err := par.ValidateValue(v); err != nil {
			fs = append(fs, errorf(in.File, in.ParameterLines[n], "spec.parameters.%s: %s", n, maskError(in.IsSensitive(n), v.Text, err)))
		}
	}
	fs = append(fs, validateScheduleParameters(in, p)...)
	fs = append(fs, in.validateSources(p)...)
	for _, par := range p.Parameters {
		if _, given := in.Parameters[par.Name]; !given && par.Required && par.Default == nil && !par.PlanScoped() && !in.takesFromSources(par.Name) {
			fs = append(fs, errorf(in.File, in.line("spec.operator"), "parameter %s of %s %s is required and has no default: set spec.parameters.%s", par.Name, p.Name, p.OperatorVersion, par.Name))
		}
	}
	for i, sc := range in.Schedules {
		if sc.Plan != "" && sc.Plan != PlanCleanup && !p.HasPlan(sc.Plan) {
			field := fmt.Sprintf("spec.schedules[%d]", i)
			fs = append(fs, errorf(in.File, in.line(field+".plan"), "%s.plan: %s %s has no plan %q (plans: %s)", field, p.Name, p.OperatorVersion, sc.Plan, strings.Join(p.PlanNames(), ", ")))
		}
	}
	fs = append(fs, in.checkGates(p)...)
	return fs
}

// maskError keeps a sensitive parameter's value out of a message.
func maskError(sensitive bool, value string, err error) string {
	if sensitive {
		return HideValue(err.Error(), value)
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
