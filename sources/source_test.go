package sources

import (
	"context"
	"io/fs"
	"testing"
	"time"
)

// newSource returns a Source on url with its own cache directory.
func newSource(t testing.TB, opts Options) *Source {
	t.Helper()
	if opts.Name == "" {
		opts.Name = "app"
	}
	if opts.CacheDir == "" {
		opts.CacheDir = t.TempDir()
	}
	if opts.Timeout == 0 {
		opts.Timeout = 30 * time.Second
	}
	s, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// poll polls s and fails the test on error.
func poll(t testing.TB, s *Source) (Snapshot, bool) {
	t.Helper()
	snap, changed, err := s.Poll(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return snap, changed
}

// readFile reads name from a snapshot, failing the test on error.
func readFile(t testing.TB, snap Snapshot, name string) string {
	t.Helper()
	b, err := fs.ReadFile(snap.FS, name)
	if err != nil {
		t.Fatalf("reading %s at %s: %v", name, snap.Commit, err)
	}
	return string(b)
}

// wantStats compares the counters a test cares about; a negative want is not checked.
func wantStats(t testing.TB, s *Source, listRemotes, fetches, reclones int64) {
	t.Helper()
	got := s.Stats()
	if (listRemotes >= 0 && got.ListRemotes != listRemotes) || (fetches >= 0 && got.Fetches != fetches) ||
		(reclones >= 0 && got.Reclones != reclones) {
		t.Errorf("stats = %+v, want ListRemotes=%d Fetches=%d Reclones=%d (negative: any)", got, listRemotes, fetches, reclones)
	}
}
