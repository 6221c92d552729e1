package daemon

import (
	"context"
	"fmt"
	"sync"

	"github.com/kudod-dev/kudod/manifests"
	"github.com/kudod-dev/kudod/sources"
)

// gitSource is what the daemon needs of a git repository.
type gitSource interface {
	Poll(ctx context.Context) (sources.Snapshot, bool, error)
	SnapshotAt(ctx context.Context, sha string) (sources.Snapshot, error)
	ListRefs(ctx context.Context, patterns []string) (map[string]string, error)
	Fetch(ctx context.Context, ref sources.Ref) (sources.Snapshot, error)
	Stats() sources.Stats
}

// packageStore finds packages by the repository and revision an Instance names. Indexes of
// recent commits are kept in memory and packages are shared by digest, so a thousand
// instances of one package at one commit cost one load; a commit no longer in memory (after a
// restart) is read again from the git cache.
type packageStore struct {
	cache   *manifests.PackageCache
	mu      sync.Mutex
	sources map[string]repositorySource
	indexes map[string]*indexEntry // repository + "@" + revision
	order   []string               // least recently added first
	limit   int
}

type repositorySource struct {
	git  gitSource
	path string
}

type indexEntry struct {
	once sync.Once
	idx  *manifests.Index
	err  error
}

func newPackageStore() *packageStore {
	return &packageStore{cache: manifests.NewPackageCache(), sources: map[string]repositorySource{}, indexes: map[string]*indexEntry{}, limit: 16}
}

func (s *packageStore) addSource(name string, src gitSource, path string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sources[name] = repositorySource{git: src, path: path}
}

// index returns the index of a repository at a commit, reading it from git when not in memory.
func (s *packageStore) index(ctx context.Context, repository, revision string) (*manifests.Index, error) {
	key := repository + "@" + revision
	s.mu.Lock()
	e, ok := s.indexes[key]
	if !ok {
		e = &indexEntry{}
		s.indexes[key] = e
		s.order = append(s.order, key)
		if len(s.order) > s.limit {
			delete(s.indexes, s.order[0])
			s.order = s.order[1:]
		}
	}
	src, known := s.sources[repository]
	s.mu.Unlock()
	e.once.Do(func() {
		if !known {
			e.err = fmt.Errorf("repository %q is not configured", repository)
			return
		}
		snap, err := src.git.SnapshotAt(ctx, revision)
		if err != nil {
			e.err = fmt.Errorf("read %s at %s: %w", repository, short(revision), err)
			return
		}
		e.idx, e.err = manifests.IndexRepository(snap.FS, manifests.IndexOptions{Path: src.path, Cache: s.cache})
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

// remember stores an index the poller built, so executors find it without reading git.
func (s *packageStore) remember(repository, revision string, idx *manifests.Index) {
	key := repository + "@" + revision
	e := &indexEntry{idx: idx}
	e.once.Do(func() {})
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.indexes[key]; !ok {
		s.order = append(s.order, key)
	}
	s.indexes[key] = e
	if len(s.order) > s.limit {
		delete(s.indexes, s.order[0])
		s.order = s.order[1:]
	}
}

// packageAt returns the package in dir at a revision, preferring the copy with the expected
// digest that is already in memory (any commit may hold it).
func (s *packageStore) packageAt(ctx context.Context, repository, revision, dir, digest string) (*manifests.Package, error) {
	if p := s.cache.Get(digest, dir); p != nil {
		return p, nil
	}
	idx, err := s.index(ctx, repository, revision)
	if err != nil {
		return nil, err
	}
	for _, p := range idx.Packages {
		if p.Dir == dir {
			if digest != "" && p.Digest != digest {
				return nil, fmt.Errorf("package %s at %s in %s has digest %s, not %s", dir, short(revision), repository, p.Digest, digest)
			}
			return p, nil
		}
	}
	if fs, broken := idx.BrokenPackages[dir]; broken {
		return nil, fmt.Errorf("package %s at %s in %s is broken: %w", dir, short(revision), repository, fs)
	}
	return nil, fmt.Errorf("no package at %s in %s at %s", dir, repository, short(revision))
}

// finder returns the KudoOperator package finder for a repository at a revision.
func (s *packageStore) finder(repository, revision string) *indexFinder {
	return &indexFinder{store: s, repository: repository, revision: revision}
}

// indexFinder finds KudoOperator packages in the parent's repository at the parent's revision.
type indexFinder struct {
	store      *packageStore
	repository string
	revision   string
}

// FindPackage implements applier.PackageFinder.
func (f *indexFinder) FindPackage(ctx context.Context, name, operatorVersion, appVersion string) (*manifests.Package, error) {
	idx, err := f.store.index(ctx, f.repository, f.revision)
	if err != nil {
		return nil, err
	}
	if p := idx.Package(name, operatorVersion, appVersion); p != nil {
		return p, nil
	}
	return nil, fmt.Errorf("repository %s has no package %s %s (appVersion %q) at %s", f.repository, name, operatorVersion, appVersion, short(f.revision))
}

func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}
