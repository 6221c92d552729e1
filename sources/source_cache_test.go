package sources

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kudod-dev/kudod/test/testenv"
)

// cachePacks returns the pack files of a source's cache.
func cachePacks(t *testing.T, s *Source, ext string) []string {
	t.Helper()
	packs, err := filepath.Glob(filepath.Join(s.dir, "objects", "pack", "*"+ext))
	if err != nil || len(packs) == 0 {
		t.Fatalf("no %s files in %s: %v", ext, s.dir, err)
	}
	return packs
}

// garble overwrites a file's bytes from offset on, keeping its size.
func garble(t *testing.T, name string, offset int64) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	for i := offset; i < int64(len(b)); i++ {
		b[i] ^= 0x5a
	}
	if err := os.WriteFile(name, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCorruptCacheIsRecloned damages the cache in the ways a crash or a full disk do, restarts
// on it, and expects the next poll to read the right content: an unreadable cache is removed and
// cloned again, lost objects are fetched again, a broken ref is rewritten.
func TestCorruptCacheIsRecloned(t *testing.T) {
	for _, tc := range []struct {
		name              string
		corrupt           func(t *testing.T, s *Source)
		fetches, reclones int64
	}{
		{"garbage HEAD", func(t *testing.T, s *Source) {
			writeFile(t, filepath.Join(s.dir, "HEAD"), "\x00\x01garbage")
		}, 1, 1},
		{"empty HEAD", func(t *testing.T, s *Source) {
			writeFile(t, filepath.Join(s.dir, "HEAD"), "")
		}, 1, 1},
		{"garbage config", func(t *testing.T, s *Source) {
			writeFile(t, filepath.Join(s.dir, "config"), "[core\nbroken = = =")
		}, 1, 1},
		{"truncated pack", func(t *testing.T, s *Source) {
			for _, p := range cachePacks(t, s, ".pack") {
				if err := os.Truncate(p, 40); err != nil {
					t.Fatal(err)
				}
			}
		}, 1, 1},
		{"garbled pack", func(t *testing.T, s *Source) {
			for _, p := range cachePacks(t, s, ".pack") {
				garble(t, p, 12) // everything after the pack header
			}
		}, 1, 1},
		{"garbled pack index", func(t *testing.T, s *Source) {
			for _, p := range cachePacks(t, s, ".idx") {
				garble(t, p, 0)
			}
		}, 1, 1},
		{"deleted objects", func(t *testing.T, s *Source) {
			for _, p := range cachePacks(t, s, "") {
				if err := os.Remove(p); err != nil {
					t.Fatal(err)
				}
			}
		}, 1, 0},
		{"broken ref", func(t *testing.T, s *Source) {
			writeFile(t, filepath.Join(s.dir, "refs", "heads", "main"), "not a hash\n")
		}, 0, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remote := testenv.NewGitRepo(t)
			c1 := remote.Commit("one", map[string]string{"deploy/a.yaml": "a: 1\n", "b.yaml": "b: 1\n"})
			cache := t.TempDir()
			first := newSource(t, Options{URL: remote.Dir, CacheDir: cache})
			poll(t, first)
			_ = first.Close()

			tc.corrupt(t, first)

			s := newSource(t, Options{URL: remote.Dir, CacheDir: cache})
			snap, _ := poll(t, s)
			if snap.Commit != c1 {
				t.Fatalf("poll = %s, want %s", snap.Commit, c1)
			}
			if readFile(t, snap, "deploy/a.yaml") != "a: 1\n" || readFile(t, snap, "b.yaml") != "b: 1\n" {
				t.Error("wrong content after cloning again")
			}
			wantStats(t, s, -1, tc.fetches, tc.reclones)
		})
	}
}

// TestObjectDamagedWhileRunning: an object that breaks under a running source fails the read
// that meets it, and the next poll finds the damage and clones again, although the remote did
// not move.
func TestObjectDamagedWhileRunning(t *testing.T) {
	remote := testenv.NewGitRepo(t)
	c1 := remote.Commit("one", map[string]string{"a.yaml": strings.Repeat("a: 1\n", 100), "b.yaml": "b: 1\n"})
	s := newSource(t, Options{URL: remote.Dir})
	snap, _ := poll(t, s)
	for _, p := range cachePacks(t, s, ".pack") {
		garble(t, p, 12)
	}
	if _, err := fs.ReadFile(snap.FS, "a.yaml"); err == nil {
		t.Fatal("reading a damaged object succeeded")
	}

	again, changed := poll(t, s)
	if again.Commit != c1 || changed {
		t.Fatalf("poll = %s changed=%v, want %s unchanged", again.Commit, changed, c1)
	}
	wantStats(t, s, 2, 2, 1)
	if got := readFile(t, snap, "a.yaml"); got != strings.Repeat("a: 1\n", 100) {
		t.Errorf("a.yaml after cloning again = %q", got)
	}
}

// TestCacheOfAnotherURL: a cache directory cloned from another URL is not reused, so commits of
// one repository never show up as another's.
func TestCacheOfAnotherURL(t *testing.T) {
	a, b := testenv.NewGitRepo(t), testenv.NewGitRepo(t)
	ca := a.Commit("a", map[string]string{"f": "a"})
	cb := b.Commit("b", map[string]string{"f": "b"})
	cache := t.TempDir()
	first := newSource(t, Options{URL: a.Dir, CacheDir: cache})
	poll(t, first)
	_ = first.Close()

	s := newSource(t, Options{URL: b.Dir, CacheDir: cache})
	if _, err := s.SnapshotAt(context.Background(), ca); !errors.Is(err, ErrCommitNotFound) {
		t.Fatalf("SnapshotAt(commit of the other repository): %v, want ErrCommitNotFound", err)
	}
	if snap, _ := poll(t, s); snap.Commit != cb || readFile(t, snap, "f") != "b" {
		t.Fatalf("poll = %s, want %s", snap.Commit, cb)
	}
	wantStats(t, s, 1, 1, 1)
}
