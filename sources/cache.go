package sources

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// openCache opens the bare repository in s.dir, creating it if missing and recreating it if
// it is unreadable or holds another repository.
func (s *Source) openCache() error {
	if _, err := os.Stat(s.dir); err == nil {
		fetchStore := newStorage(s.dir)
		err := checkCache(fetchStore)
		if err == nil {
			err = s.checkOrigin(fetchStore)
		}
		if err == nil {
			repo, rerr := newRepository(s.opts.Name, newStorage(s.dir))
			if rerr == nil {
				s.fetchStore, s.repo = fetchStore, repo
				return nil
			}
			err = rerr
		}
		_ = fetchStore.Close()
		s.log.Warn("git cache is unusable; removing it", "dir", s.dir, "error", err)
		s.reclones.Add(1)
		if err := os.RemoveAll(s.dir); err != nil {
			return err
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	fetchStore, err := s.initCache()
	if err != nil {
		return err
	}
	repo, err := newRepository(s.opts.Name, newStorage(s.dir))
	if err != nil {
		return err
	}
	s.fetchStore, s.repo = fetchStore, repo
	return nil
}

// resetCache replaces a corrupt cache with an empty one.
func (s *Source) resetCache() error {
	_ = s.fetchStore.Close()
	s.repo.mu.Lock()
	defer s.repo.mu.Unlock()
	_ = s.repo.store.Close()
	if err := os.RemoveAll(s.dir); err != nil {
		return err
	}
	fetchStore, err := s.initCache()
	if err != nil {
		return err
	}
	s.fetchStore = fetchStore
	return s.repo.setStore(newStorage(s.dir))
}

func (s *Source) initCache() (*filesystem.Storage, error) {
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		return nil, err
	}
	st := newStorage(s.dir)
	if _, err := git.Init(st, nil); err != nil {
		return nil, err
	}
	cfg, err := st.Config()
	if err != nil {
		return nil, err
	}
	cfg.Remotes[git.DefaultRemoteName] = s.remoteConfig()
	if err := st.SetConfig(cfg); err != nil {
		return nil, err
	}
	return st, nil
}

// checkOrigin rejects a cache cloned from another URL: its commits are not this repository's.
func (s *Source) checkOrigin(st *filesystem.Storage) error {
	cfg, err := st.Config()
	if err != nil {
		return err
	}
	want := s.remoteURL
	if r := cfg.Remotes[git.DefaultRemoteName]; r == nil || len(r.URLs) == 0 || r.URLs[0] != want {
		return fmt.Errorf("cache was cloned from another URL")
	}
	return nil
}

// newStorage opens the bare repository in dir. Descriptors stay open: a snapshot reads many
// objects from few pack files.
func newStorage(dir string) *filesystem.Storage {
	return filesystem.NewStorageWithOptions(osfs.New(dir), cache.NewObjectLRU(32*cache.MiByte),
		filesystem.Options{KeepDescriptors: true})
}

// checkCache reads what every operation on the cache relies on: HEAD, the config, the refs
// and the pack indexes. Objects themselves are checked as they are read.
func checkCache(st *filesystem.Storage) error {
	head, err := os.ReadFile(filepath.Join(st.Filesystem().Root(), "HEAD"))
	if err != nil {
		return fmt.Errorf("reading HEAD: %w", err)
	}
	if line := strings.TrimSpace(string(head)); !strings.HasPrefix(line, "ref: refs/") && !commitSHA.MatchString(line) {
		return fmt.Errorf("HEAD holds %.60q", line) // the first 60 characters, quoted
	}
	if _, err := st.Config(); err != nil {
		return fmt.Errorf("reading config: %w", err)
	}
	refs, err := st.IterReferences()
	if err != nil {
		return fmt.Errorf("reading refs: %w", err)
	}
	if err := refs.ForEach(func(*plumbing.Reference) error { return nil }); err != nil {
		return fmt.Errorf("reading refs: %w", err)
	}
	// Looking an object up loads every pack index.
	if err := st.HasEncodedObject(plumbing.ZeroHash); err != nil && !errors.Is(err, plumbing.ErrObjectNotFound) {
		return fmt.Errorf("reading pack indexes: %w", err)
	}
	return nil
}
