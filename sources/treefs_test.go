package sources

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/kudod-dev/kudod/test/testenv"
)

// TestSnapshotFS runs the standard library's file system checks on a snapshot with nested
// directories, an executable, and symbolic links of every kind.
func TestSnapshotFS(t *testing.T) {
	remote := testenv.NewGitRepo(t)
	remote.Commit("tree", map[string]string{
		"operators/zk/0.3.3/operator.yaml":              "name: zookeeper\n",
		"operators/zk/0.3.3/params.yaml":                "parameters: []\n",
		"operators/zk/0.3.3/templates/statefulset.yaml": "kind: StatefulSet\n",
		"instances/data/zk.yaml":                        "kind: Instance\n",
		"a.yaml":                                        "a\n",
		"a/b.yaml":                                      "b\n", // git sorts "a/" after "a.yaml"; fs.FS must not
		"hack/run.sh":                                   "#!/bin/sh\n",
	})
	if err := os.Chmod(filepath.Join(remote.Dir, "hack", "run.sh"), 0o755); err != nil {
		t.Fatal(err)
	}
	for link, target := range map[string]string{
		"instances/data/zk-link.yaml": "zk.yaml",                     // a file: kept
		"chain.yaml":                  "instances/data/zk-link.yaml", // a link to a link: kept
		"dangling.yaml":               "nothing.yaml",                // dropped
		"outside.yaml":                "../../etc/passwd",            // dropped
		"absolute.yaml":               "/etc/passwd",                 // dropped
		"dirlink":                     "operators",                   // a directory: dropped
	} {
		if err := os.Symlink(target, filepath.Join(remote.Dir, filepath.FromSlash(link))); err != nil {
			t.Fatal(err)
		}
	}
	remote.Commit("links", nil)
	s := newSource(t, Options{URL: remote.Dir})
	snap, _ := poll(t, s)

	if err := fstest.TestFS(snap.FS,
		"operators/zk/0.3.3/operator.yaml", "operators/zk/0.3.3/params.yaml",
		"operators/zk/0.3.3/templates/statefulset.yaml", "instances/data/zk.yaml",
		"instances/data/zk-link.yaml", "chain.yaml", "a.yaml", "a/b.yaml", "hack/run.sh",
	); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"instances/data/zk-link.yaml", "chain.yaml"} {
		if got := readFile(t, snap, name); got != "kind: Instance\n" {
			t.Errorf("%s = %q, want the content of its target", name, got)
		}
	}
	for _, name := range []string{"dangling.yaml", "outside.yaml", "absolute.yaml", "dirlink", ".git"} {
		if _, err := fs.Stat(snap.FS, name); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("Stat(%s) = %v, want fs.ErrNotExist", name, err)
		}
	}
	info, err := fs.Stat(snap.FS, "hack/run.sh")
	if err != nil || info.Mode() != 0o555 || !info.ModTime().Equal(snap.Time) || info.Size() != 10 {
		t.Errorf("Stat(hack/run.sh) = %v %v, want an executable of 10 bytes dated %v", info, err, snap.Time)
	}
	if _, err := fs.ReadFile(snap.FS, "a"); err == nil {
		t.Error("ReadFile of a directory succeeded")
	}
	if _, err := fs.ReadDir(snap.FS, "a.yaml"); err == nil {
		t.Error("ReadDir of a file succeeded")
	}
	if _, err := snap.FS.Open("/a.yaml"); !errors.Is(err, fs.ErrInvalid) {
		t.Errorf("Open(/a.yaml) = %v, want fs.ErrInvalid", err)
	}

	// FileHash is git's blob hash, without reading the file: a link has its target's.
	hasher := snap.FS.(interface{ FileHash(string) (string, error) })
	for name, want := range map[string]string{
		"a.yaml":     "78981922613b2afb6025042ff6bd878ac1994e85", // git hash-object of "a\n"
		"chain.yaml": mustHash(t, hasher, "instances/data/zk.yaml"),
	} {
		if got := mustHash(t, hasher, name); got != want {
			t.Errorf("FileHash(%s) = %s, want %s", name, got, want)
		}
	}
	if _, err := hasher.FileHash("a"); err == nil {
		t.Error("FileHash of a directory succeeded")
	}
	if _, err := hasher.FileHash("nothing.yaml"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("FileHash(nothing.yaml) = %v, want fs.ErrNotExist", err)
	}

	// ReadFile hands out a copy: a caller scribbling on it does not change the snapshot.
	b, _ := fs.ReadFile(snap.FS, "a.yaml")
	b[0] = 'X'
	if got := readFile(t, snap, "a.yaml"); got != "a\n" {
		t.Errorf("a.yaml after modifying a returned slice = %q", got)
	}
}

func mustHash(t *testing.T, h interface{ FileHash(string) (string, error) }, name string) string {
	t.Helper()
	v, err := h.FileHash(name)
	if err != nil {
		t.Fatalf("FileHash(%s): %v", name, err)
	}
	return v
}

// TestSnapshotMatchesDisk commits the test packages and reads every file back from the
// snapshot, as manifests.Load does, byte for byte.
func TestSnapshotMatchesDisk(t *testing.T) {
	snapshotMatchesDisk(t, testenv.FixtureOperatorsDir(t))
}

// TestCatalogSnapshotMatchesDisk does the same with the public KUDO packages.
func TestCatalogSnapshotMatchesDisk(t *testing.T) {
	snapshotMatchesDisk(t, testenv.CatalogDir(t))
}

func snapshotMatchesDisk(t *testing.T, operators string) {
	remote := testenv.NewGitRepo(t)
	if err := os.CopyFS(filepath.Join(remote.Dir, "operators"), os.DirFS(operators)); err != nil {
		t.Fatal(err)
	}
	remote.Commit("operators", nil)
	s := newSource(t, Options{URL: remote.Dir})
	snap, _ := poll(t, s)
	sub, err := fs.Sub(snap.FS, "operators")
	if err != nil {
		t.Fatal(err)
	}

	var files int
	err = fs.WalkDir(os.DirFS(operators), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		want, err := os.ReadFile(filepath.Join(operators, p))
		if err != nil {
			return err
		}
		got, err := fs.ReadFile(sub, p)
		if err != nil {
			return err
		}
		if !bytes.Equal(got, want) {
			return fmt.Errorf("%s differs from the file on disk", p)
		}
		files++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatal("no files compared")
	}
}

// TestReadsWhilePolling reads snapshots of older commits from many goroutines while the source
// polls new commits (run with -race).
func TestReadsWhilePolling(t *testing.T) {
	remote := testenv.NewGitRepo(t)
	files := map[string]string{}
	for i := range 50 {
		files[fmt.Sprintf("dir%d/f%d.yaml", i%5, i)] = fmt.Sprintf("v: %d\n", i)
	}
	var commits []string
	commits = append(commits, remote.Commit("base", files))
	s := newSource(t, Options{URL: remote.Dir})
	poll(t, s)

	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for round := 1; round <= 4; round++ {
		old := commits[len(commits)-1]
		for range 4 {
			wg.Go(func() {
				snap, err := s.SnapshotAt(ctx, old)
				if err != nil {
					errs <- err
					return
				}
				errs <- fs.WalkDir(snap.FS, ".", func(p string, d fs.DirEntry, err error) error {
					if err != nil || d.IsDir() {
						return err
					}
					f, err := snap.FS.Open(p)
					if err != nil {
						return err
					}
					defer f.Close()
					_, err = io.Copy(io.Discard, f)
					return err
				})
			})
		}
		commits = append(commits, remote.Commit(fmt.Sprintf("round %d", round), map[string]string{
			fmt.Sprintf("dir0/new%d.yaml", round): "new\n",
		}))
		if snap, changed := poll(t, s); snap.Commit != commits[len(commits)-1] || !changed {
			t.Fatalf("round %d: poll = %s changed=%v", round, snap.Commit, changed)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}
