// Package store finds operator packages by the repository and revision an Instance names:
// the package an execution runs, the one a plan was last planned with, and the packages of
// KudoOperator children (Finder).
package store

import (
	"context"
	"fmt"
	"sync"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/internal/mask"
	"github.com/kudod-dev/kudod/manifests"
	"github.com/kudod-dev/kudod/sources"
)

// Snapshots reads a repository at a commit (sources.Source does, from its git cache).
type Snapshots interface {
	SnapshotAt(ctx context.Context, sha string) (sources.Snapshot, error)
}

// defaultLimit is how many indexes (repository, revision) the store keeps in memory.
const defaultLimit = 16

// Store keeps the indexes of recent commits in memory and shares packages by digest, so a
// thousand instances of one package at one commit cost one load; a commit no longer in memory
// (after a restart) is read again from the git cache. Each index reuses what the one before
// it parsed from files that did not change, so the indexes it keeps share most of their
// instances and a new commit costs in proportion to what it changed (docs/scaling.md).
type Store struct {
	cache *manifests.PackageCache
	// masker learns the sensitive values of every index (docs/secrets.md).
	masker *mask.Masker
	// limits bound what indexing reads and renders: MaxInstanceFileSize and RenderLimits of
	// manifests.IndexOptions.
	limits       manifests.IndexOptions
	mu           sync.Mutex
	repositories map[string]repository
	indexes      map[string]*indexEntry // repository + "@" + revision
	order        []string               // least recently added first
	limit        int
}

type repository struct {
	git  Snapshots
	path string
	// decrypter, when set, makes the decrypter of the repository's SOPS-encrypted files for
	// one index (internal/decrypt); without it they are listed as encrypted, key not
	// available (manifests.Index.Encrypted).
	decrypter func(ctx context.Context) manifests.Decrypter
	// latest is the index IndexSnapshot built last: the next index reuses what it read from
	// files that did not change (manifests.IndexOptions.Previous).
	latest *manifests.Index
}

type indexEntry struct {
	once sync.Once
	idx  *manifests.Index
	err  error
}

// New returns an empty store.
func New() *Store {
	return &Store{cache: manifests.NewPackageCache(), repositories: map[string]repository{}, indexes: map[string]*indexEntry{}, limit: defaultLimit}
}

// SetLimits sets the bounds of every index the store builds (docs/configuration.md, the flags
// --render-timeout and --max-instance-file-size of kudod run). Call before the first index.
func (s *Store) SetLimits(maxInstanceFileSize int64, render manifests.RenderLimits) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limits = manifests.IndexOptions{MaxInstanceFileSize: maxInstanceFileSize, RenderLimits: render}
}

// indexOptions are the options of an index of a repository's path.
func (s *Store) indexOptions(path string) manifests.IndexOptions {
	s.mu.Lock()
	defer s.mu.Unlock()
	o := s.limits
	o.Path, o.Cache = path, s.cache
	return o
}

// AddRepository makes a repository known: git reads it, path is the folder to index.
func (s *Store) AddRepository(name string, git Snapshots, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repositories[name] = repository{git: git, path: path}
}

// SetDecryption makes a known repository's SOPS-encrypted files readable: decrypter returns
// the decrypter for one index, with the keys as they are then.
func (s *Store) SetDecryption(repository string, decrypter func(ctx context.Context) manifests.Decrypter) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.repositories[repository]; ok {
		r.decrypter = decrypter
		s.repositories[repository] = r
	}
}

// SetMasker has the store tell m the sensitive values of every index it builds.
func (s *Store) SetMasker(m *mask.Masker) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.masker = m
}

// IndexSnapshot indexes a snapshot of a known repository and keeps the index, so executions
// find its packages without reading git again. Verifying new packages renders their
// templates, which stops when ctx ends.
func (s *Store) IndexSnapshot(ctx context.Context, repository string, snap sources.Snapshot) (*manifests.Index, error) {
	s.mu.Lock()
	repo, known := s.repositories[repository]
	s.mu.Unlock()
	if !known {
		return nil, fmt.Errorf("repository %q is not configured", repository)
	}
	idx, err := s.indexTree(ctx, repo, snap)
	if err != nil {
		return nil, fmt.Errorf("index %s at %s: %w", repository, v1alpha1.ShortRevision(snap.Commit), err)
	}
	if err := ctx.Err(); err != nil {
		return nil, err // cut short: its packages' findings are not to be trusted
	}
	s.setLatest(repository, idx)
	s.remember(repository, snap.Commit, idx)
	return idx, nil
}

// setLatest records the index built last for a repository.
func (s *Store) setLatest(repository string, idx *manifests.Index) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if r, ok := s.repositories[repository]; ok {
		r.latest = idx
		s.repositories[repository] = r
	}
}

// indexTree indexes a snapshot with the repository's settings, reusing the latest index, and
// learns its sensitive values: those of every instance, shared with the latest index or not,
// since the masker may have forgotten them (mask.Masker keeps a bounded number).
func (s *Store) indexTree(ctx context.Context, repo repository, snap sources.Snapshot) (*manifests.Index, error) {
	opts := s.indexOptions(repo.path)
	opts.Previous = repo.latest
	if repo.decrypter != nil {
		opts.Decrypter = repo.decrypter(ctx)
	}
	idx, err := manifests.IndexRepositoryContext(ctx, snap.FS, opts)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	m := s.masker
	s.mu.Unlock()
	for _, list := range [][]*manifests.Instance{idx.Instances, idx.Invalid} {
		for _, in := range list {
			m.Add(in.SensitiveValues()...)
		}
	}
	return idx, nil
}

// index returns the index of a repository at a commit, reading it from git when not in memory.
func (s *Store) index(ctx context.Context, repository, revision string) (*manifests.Index, error) {
	key := repository + "@" + revision
	s.mu.Lock()
	e, ok := s.indexes[key]
	if !ok {
		e = &indexEntry{}
		s.indexes[key] = e
		s.order = append(s.order, key)
		s.evict()
	}
	repo, known := s.repositories[repository]
	s.mu.Unlock()
	e.once.Do(func() {
		if !known {
			e.err = fmt.Errorf("repository %q is not configured", repository)
			return
		}
		snap, err := repo.git.SnapshotAt(ctx, revision)
		if err != nil {
			e.err = fmt.Errorf("read %s at %s: %w", repository, v1alpha1.ShortRevision(revision), err)
			return
		}
		e.idx, e.err = s.indexTree(ctx, repo, snap)
		if e.err == nil && ctx.Err() != nil {
			e.idx, e.err = nil, ctx.Err()
		}
	})
	if e.err != nil {
		s.mu.Lock()
		if s.indexes[key] == e {
			delete(s.indexes, key) // let a later call try again
		}
		s.mu.Unlock()
	}
	return e.idx, e.err
}

// remember keeps an index built from a snapshot.
func (s *Store) remember(repository, revision string, idx *manifests.Index) {
	key := repository + "@" + revision
	e := &indexEntry{idx: idx}
	e.once.Do(func() {})
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.indexes[key]; !ok {
		s.order = append(s.order, key)
	}
	s.indexes[key] = e
	s.evict()
}

// evict drops the oldest index beyond the limit. s.mu is held.
func (s *Store) evict() {
	if len(s.order) > s.limit {
		delete(s.indexes, s.order[0])
		s.order = s.order[1:]
	}
}

// PackageAt returns the package in dir at a revision, preferring the copy with the expected
// digest that is already in memory (any commit may hold it).
func (s *Store) PackageAt(ctx context.Context, repository, revision, dir, digest string) (*manifests.Package, error) {
	if p := s.cache.Get(digest, dir); p != nil {
		return p, nil
	}
	idx, err := s.index(ctx, repository, revision)
	if err != nil {
		return nil, err
	}
	short := v1alpha1.ShortRevision(revision)
	for _, p := range idx.Packages {
		if p.Dir == dir {
			if digest != "" && p.Digest != digest {
				return nil, fmt.Errorf("package %s at %s in %s has digest %s, not %s", dir, short, repository, p.Digest, digest)
			}
			return p, nil
		}
	}
	if fs, broken := idx.BrokenPackages[dir]; broken {
		return nil, fmt.Errorf("package %s at %s in %s is broken: %w", dir, short, repository, fs)
	}
	return nil, fmt.Errorf("no package at %s in %s at %s", dir, repository, short)
}

// Instance returns the instance "<namespace>/<name>" a repository declares at a revision, as
// read from git: with the sensitive values the Instance object holds only as digests.
func (s *Store) Instance(ctx context.Context, repository, revision, key string) (*manifests.Instance, error) {
	idx, err := s.index(ctx, repository, revision)
	if err != nil {
		return nil, err
	}
	if in := idx.Instance(key); in != nil {
		return in, nil
	}
	for _, in := range idx.Invalid {
		if in.Key() == key {
			return nil, fmt.Errorf("instance %s at %s in %s is invalid: %w", key, v1alpha1.ShortRevision(revision), repository, idx.InvalidFindings[key])
		}
	}
	return nil, fmt.Errorf("%s declares no instance %s at %s", repository, key, v1alpha1.ShortRevision(revision))
}

// InstancePackage returns the package an Instance's spec names.
func (s *Store) InstancePackage(ctx context.Context, inst *v1alpha1.Instance) (*manifests.Package, error) {
	src := inst.Spec.Source
	return s.PackageAt(ctx, src.Repository, src.Revision, src.PackagePath, inst.Spec.PackageDigest)
}

// Finder returns the finder of KudoOperator packages in a repository at a revision.
func (s *Store) Finder(repository, revision string) *Finder {
	return &Finder{store: s, repository: repository, revision: revision}
}

// Finder finds KudoOperator packages in the parent's repository at the parent's revision
// (applier.PackageFinder).
type Finder struct {
	store      *Store
	repository string
	revision   string
}

// FindPackage returns the package of a KudoOperator task.
func (f *Finder) FindPackage(ctx context.Context, name, operatorVersion, appVersion string) (*manifests.Package, error) {
	idx, err := f.store.index(ctx, f.repository, f.revision)
	if err != nil {
		return nil, err
	}
	if p := idx.Package(name, operatorVersion, appVersion); p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("repository %s has no package %s %s (appVersion %q) at %s", f.repository, name, operatorVersion, appVersion, v1alpha1.ShortRevision(f.revision))
}

// InstanceAt returns an instance as git declared it at a revision, with its package resolved
// (a rollback reads the revision it returns to this way: its parameters, sensitive ones
// included, come from git and are never stored in the cluster).
func (s *Store) InstanceAt(ctx context.Context, repository, revision, namespace, name string) (*manifests.Instance, error) {
	idx, err := s.index(ctx, repository, revision)
	if err != nil {
		return nil, err
	}
	key := namespace + "/" + name
	for _, in := range idx.Instances {
		if in.Key() == key {
			return in, nil
		}
	}
	for _, in := range idx.Invalid {
		if in.Key() == key {
			return nil, fmt.Errorf("instance %s is not valid at %s in %s", key, v1alpha1.ShortRevision(revision), repository)
		}
	}
	return nil, fmt.Errorf("no instance %s at %s in %s", key, v1alpha1.ShortRevision(revision), repository)
}
