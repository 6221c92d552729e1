package sources

import (
	"context"
	"fmt"
	"io/fs"
	"path/filepath"
	"testing"

	"github.com/kudod-dev/kudod/test/testenv"
)

// BenchmarkPollNoChange is the daemon's steady state: a poll of a remote that did not move,
// which must cost one ls-remote and no fetch.
func BenchmarkPollNoChange(b *testing.B) {
	remote := testenv.NewGitRepo(b)
	remote.Commit("one", map[string]string{"a.yaml": "a: 1\n"})
	token := randomSecret(b)
	srv := newGitHTTPServer(b, filepath.Dir(remote.Dir), map[string]string{"git": token})
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"file", Options{URL: remote.Dir}},
		{"http", Options{URL: srv.URL + "/app/.git", Auth: Auth{TokenFile: secretFile(b, token)}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			s := newSource(b, tc.opts)
			poll(b, s)
			before := s.Stats().Fetches
			ctx := context.Background()
			for b.Loop() {
				if _, changed, err := s.Poll(ctx); err != nil || changed {
					b.Fatalf("poll: changed=%v err=%v", changed, err)
				}
			}
			if f := s.Stats().Fetches - before; f != 0 {
				b.Fatalf("%d fetches while the remote did not move", f)
			}
		})
	}
}

// BenchmarkReadTree reads every file of a 1,000-file commit: "cold" opens the cache and reads
// the tree and blobs from git objects, "warm" reads a snapshot already read once (what every
// instance after the first sees).
func BenchmarkReadTree(b *testing.B) {
	remote := testenv.NewGitRepo(b)
	files := map[string]string{}
	for i := range 1000 {
		files[fmt.Sprintf("instances/ns%02d/instance-%04d.yaml", i%40, i)] = fmt.Sprintf(
			"apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: i%d\nspec:\n  operator:\n    name: zookeeper\n", i)
	}
	head := remote.Commit("1000 files", files)
	s := newSource(b, Options{URL: remote.Dir})
	poll(b, s)
	ctx := context.Background()

	readAll := func(b *testing.B, fsys fs.FS) {
		n := 0
		err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			_, err = fs.ReadFile(fsys, p)
			n++
			return err
		})
		if err != nil || n != 1000 {
			b.Fatalf("read %d files: %v", n, err)
		}
	}
	b.Run("cold", func(b *testing.B) {
		for b.Loop() {
			r, err := Open(s.dir)
			if err != nil {
				b.Fatal(err)
			}
			snap, err := r.SnapshotAt(ctx, head)
			if err != nil {
				b.Fatal(err)
			}
			readAll(b, snap.FS)
			_ = r.Close()
		}
	})
	b.Run("warm", func(b *testing.B) {
		snap, err := s.SnapshotAt(ctx, head)
		if err != nil {
			b.Fatal(err)
		}
		readAll(b, snap.FS)
		for b.Loop() {
			readAll(b, snap.FS)
		}
	})
}
