// Package store finds operator packages by the repository and revision an Instance names:
// the package an execution runs, the one a plan was last planned with, and the packages of
// KudoOperator children (Finder).
package store

import (
	"context"
	"fmt"
	"sync"

	"github.com/kudod-dev/kudod/api/v1alpha1"
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
	cache        *manifests.PackageCache
	mu           sync.Mutex
	repositories map[string]repository
	indexes      map[string]*indexEntry // repository + "@" + revision
	order        []string               // least recently added first
	limit        int
}

type repository struct {
	git  Snapshots
	path string
	// latest is the index built last: the next one reuses what it parsed from files that did
	// not change (manifests.IndexOptions.Previous).
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

// AddRepository makes a repository known: git reads it, path is the folder to index.
func (s *Store) AddRepository(name string, git Snapshots, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.repositories[name] = repository{git: git, path: path}
}

// IndexSnapshot indexes a snapshot of a known repository and keeps the index, so executions
// find its packages without reading git again.
func (s *Store) IndexSnapshot(repository string, snap sources.Snapshot) (*manifests.Index, error) {
	s.mu.Lock()
	repo, known := s.repositories[repository]
	s.mu.Unlock()
	if !known {
		return nil, fmt.Errorf("repository %q is not configured", repository)
	}
	idx, err := manifests.IndexRepository(snap.FS, manifests.IndexOptions{Path: repo.path, Cache: s.cache, Previous: repo.latest})
	if err != nil {
		return nil, fmt.Errorf("index %s at %s: %w", repository, v1alpha1.ShortRevision(snap.Commit), err)
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
		e.idx, e.err = manifests.IndexRepository(snap.FS, manifests.IndexOptions{Path: repo.path, Cache: s.cache, Previous: repo.latest})
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
