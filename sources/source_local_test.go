package sources

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kudod-dev/kudod/test/testenv"
)

// TestPollFromDisk reads a repository by file:// URL and by plain path: the first poll clones,
// a poll of an unchanged remote is one ls-remote and no fetch, a new commit is seen by the next
// poll, and the older commit stays readable.
func TestPollFromDisk(t *testing.T) {
	for _, tc := range []struct {
		name string
		url  func(dir string) string
	}{
		{"file URL", func(dir string) string { return "file://" + dir }},
		{"path", func(dir string) string { return dir }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			remote := testenv.NewGitRepo(t)
			c1 := remote.Commit("first", map[string]string{"operators/zk/operator.yaml": "name: zk\n"})
			s := newSource(t, Options{URL: tc.url(remote.Dir)})

			snap, changed := poll(t, s)
			if snap.Commit != c1 || !changed || snap.RefName != "refs/heads/main" || snap.Repository != "app" {
				t.Fatalf("first poll = %+v changed=%v, want commit %s on refs/heads/main, changed", snap, changed, c1)
			}
			if got := readFile(t, snap, "operators/zk/operator.yaml"); got != "name: zk\n" {
				t.Errorf("operator.yaml = %q", got)
			}
			wantStats(t, s, 1, 1, 0)

			again, changed := poll(t, s)
			if again.Commit != c1 || changed {
				t.Fatalf("second poll = %s changed=%v, want %s unchanged", again.Commit, changed, c1)
			}
			if again.FS != snap.FS {
				t.Error("an unchanged poll built a new FS; it should hand out the same one")
			}
			wantStats(t, s, 2, 1, 0)

			c2 := remote.Commit("second", map[string]string{"operators/zk/operator.yaml": "name: zk2\n"})
			snap2, changed := poll(t, s)
			if snap2.Commit != c2 || !changed {
				t.Fatalf("poll after a commit = %s changed=%v, want %s changed", snap2.Commit, changed, c2)
			}
			if got := readFile(t, snap2, "operators/zk/operator.yaml"); got != "name: zk2\n" {
				t.Errorf("operator.yaml at the new commit = %q", got)
			}
			if got := readFile(t, snap, "operators/zk/operator.yaml"); got != "name: zk\n" {
				t.Errorf("operator.yaml at the old snapshot = %q", got)
			}
			wantStats(t, s, 3, 2, 0)
		})
	}
}

// TestUnchangedRemoteIsNeverFetched polls an unchanged remote many times, then restarts on the
// warm cache: no poll but the first fetches.
func TestUnchangedRemoteIsNeverFetched(t *testing.T) {
	remote := testenv.NewGitRepo(t)
	c1 := remote.Commit("first", map[string]string{"a.yaml": "a: 1\n"})
	cache := t.TempDir()
	s := newSource(t, Options{URL: remote.Dir, CacheDir: cache})
	for range 5 {
		poll(t, s)
	}
	wantStats(t, s, 5, 1, 0)
	_ = s.Close()

	restarted := newSource(t, Options{URL: remote.Dir, CacheDir: cache})
	snap, changed := poll(t, restarted)
	if snap.Commit != c1 || !changed {
		t.Fatalf("poll after restart = %s changed=%v, want %s and changed (first poll of this Source)", snap.Commit, changed, c1)
	}
	if got := readFile(t, snap, "a.yaml"); got != "a: 1\n" {
		t.Errorf("a.yaml = %q", got)
	}
	wantStats(t, restarted, 1, 0, 0)
}

// TestSnapshotAt reads older commits from the cache, by SHA and by revision, and shares the FS
// of a commit between callers.
func TestSnapshotAt(t *testing.T) {
	remote := testenv.NewGitRepo(t)
	c1 := remote.Commit("one", map[string]string{"v.txt": "1"})
	c2 := remote.Commit("two", map[string]string{"v.txt": "2"})
	c3 := remote.Commit("three", map[string]string{"v.txt": "3", "new.txt": "n"})
	s := newSource(t, Options{URL: remote.Dir})
	ctx := context.Background()

	if _, err := s.SnapshotAt(ctx, c1); !errors.Is(err, ErrCommitNotFound) {
		t.Fatalf("SnapshotAt before any poll: err = %v, want ErrCommitNotFound", err)
	}
	head, _ := poll(t, s)
	for rev, want := range map[string]string{c1: "1", c2: "2", c3: "3", "main~1": "2", "refs/heads/main": "3"} {
		snap, err := s.SnapshotAt(ctx, rev)
		if err != nil {
			t.Fatalf("SnapshotAt(%s): %v", rev, err)
		}
		if got := readFile(t, snap, "v.txt"); got != want {
			t.Errorf("SnapshotAt(%s): v.txt = %q, want %q", rev, got, want)
		}
		if snap.Ref.Commit != snap.Commit || snap.RefName != "" {
			t.Errorf("SnapshotAt(%s) = ref %+v name %q, want Ref{Commit: %s} and no name", rev, snap.Ref, snap.RefName, snap.Commit)
		}
	}
	at, err := s.SnapshotAt(ctx, c3)
	if err != nil {
		t.Fatal(err)
	}
	if at.FS != head.FS {
		t.Error("SnapshotAt(head) built a new FS instead of sharing the polled one")
	}
	old, err := s.SnapshotAt(ctx, c1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.FS.Open("new.txt"); err == nil {
		t.Error("new.txt exists at the first commit")
	}

	_, err = s.SnapshotAt(ctx, strings.Repeat("ab", 20))
	if !errors.Is(err, ErrCommitNotFound) || !strings.Contains(err.Error(), `repository "app"`) {
		t.Errorf("SnapshotAt(unknown) err = %v, want ErrCommitNotFound naming the repository", err)
	}
	wantStats(t, s, 1, 1, 0)
}

// TestFetchOtherRef reads a ref Poll does not track, without moving what Poll tracks.
func TestFetchOtherRef(t *testing.T) {
	remote := testenv.NewGitRepo(t)
	c1 := remote.Commit("main", map[string]string{"f": "main"})
	remote.Git("checkout", "-q", "-b", "feature")
	c2 := remote.Commit("feature", map[string]string{"f": "feature"})
	remote.Git("update-ref", "refs/pull/7/head", c2)
	remote.Git("checkout", "-q", "main")
	s := newSource(t, Options{URL: remote.Dir})

	poll(t, s)
	pr, err := s.Fetch(context.Background(), Ref{Name: "refs/pull/7/head"})
	if err != nil {
		t.Fatal(err)
	}
	if pr.Commit != c2 || readFile(t, pr, "f") != "feature" {
		t.Errorf("Fetch(refs/pull/7/head) = %s, want %s", pr.Commit, c2)
	}
	snap, changed := poll(t, s)
	if snap.Commit != c1 || changed {
		t.Errorf("poll after Fetch = %s changed=%v, want %s unchanged", snap.Commit, changed, c1)
	}
}

// TestListRefs lists the remote's refs by glob, as previews of pull requests do.
func TestListRefs(t *testing.T) {
	remote := testenv.NewGitRepo(t)
	c1 := remote.Commit("one", map[string]string{"f": "1"})
	c2 := remote.Commit("two", map[string]string{"f": "2"})
	remote.Git("update-ref", "refs/pull/1/head", c1)
	remote.Git("update-ref", "refs/pull/2/head", c2)
	remote.Git("update-ref", "refs/pull/2/merge", c2)
	remote.Git("tag", "-a", "v1.0.0", "-m", "release", c1)
	s := newSource(t, Options{URL: remote.Dir})
	ctx := context.Background()

	for _, tc := range []struct {
		patterns []string
		want     map[string]string
	}{
		{[]string{"refs/pull/*/head"}, map[string]string{"refs/pull/1/head": c1, "refs/pull/2/head": c2}},
		{[]string{"refs/pull/2/*", "refs/heads/*"}, map[string]string{"refs/pull/2/head": c2, "refs/pull/2/merge": c2, "refs/heads/main": c2}},
		{[]string{"refs/tags/v*"}, map[string]string{"refs/tags/v1.0.0": c1}}, // peeled to the commit
		{[]string{"refs/merge-requests/*/head"}, map[string]string{}},
	} {
		got, err := s.ListRefs(ctx, tc.patterns)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, tc.want) {
			t.Errorf("ListRefs(%q) = %v, want %v", tc.patterns, got, tc.want)
		}
	}
	if _, err := s.ListRefs(ctx, []string{"refs/pull/[/head"}); err == nil || !strings.Contains(err.Error(), "invalid ref pattern") {
		t.Errorf("ListRefs(bad pattern) err = %v", err)
	}
	wantStats(t, s, 4, 0, 0)
}

// TestNewRejectsBadOptions checks what New refuses before touching any remote.
func TestNewRejectsBadOptions(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		opts Options
		want string
	}{
		{"no name", Options{URL: dir, CacheDir: dir}, "invalid source name"},
		{"name with slash", Options{Name: "a/b", URL: dir, CacheDir: dir}, "invalid source name"},
		{"no url", Options{Name: "a", CacheDir: dir}, "no URL"},
		{"git protocol", Options{Name: "a", URL: "git://example.com/r.git", CacheDir: dir}, `unsupported URL scheme "git"`},
		{"password in url", Options{Name: "a", URL: "https://u:hunter2@example.com/r.git", CacheDir: dir}, "holds a password"},
		{"bad url with password", Options{Name: "a", URL: "https://u:hunter2@example.com/%zz", CacheDir: dir}, "invalid URL"},
		{"no cache", Options{Name: "a", URL: dir}, "no cache directory"},
		{"two refs", Options{Name: "a", URL: dir, CacheDir: dir, Ref: Ref{Branch: "main", Tag: "v1"}}, "must set one of"},
		{"bad semver", Options{Name: "a", URL: dir, CacheDir: dir, Ref: Ref{SemVer: "not a range"}}, "invalid semver range"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New: err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error shows the password: %v", err)
			}
		})
	}
}

// TestMissingRepository and an empty one give clear errors and no snapshot.
func TestMissingOrEmptyRepository(t *testing.T) {
	empty := testenv.NewGitRepo(t)
	for _, tc := range []struct {
		name string
		url  string
		want error
	}{
		{"missing", filepath.Join(t.TempDir(), "nothing-here"), ErrRepositoryNotFound},
		{"empty", empty.Dir, ErrRefNotFound},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSource(t, Options{URL: tc.url})
			snap, changed, err := s.Poll(context.Background())
			if !errors.Is(err, tc.want) || !snap.IsZero() || changed {
				t.Fatalf("Poll = %+v, %v, %v; want zero snapshot and %v", snap, changed, err, tc.want)
			}
			if !strings.Contains(err.Error(), `repository "app" (`+tc.url+`)`) {
				t.Errorf("error does not name the repository and URL: %v", err)
			}
		})
	}
}

// TestOpen reads commits of a local work tree by revision, as kudod plan --repo DIR does.
func TestOpen(t *testing.T) {
	remote := testenv.NewGitRepo(t)
	c1 := remote.Commit("one", map[string]string{"v.txt": "1"})
	remote.Commit("two", map[string]string{"v.txt": "2"})
	remote.Git("tag", "-a", "v1", "-m", "one", c1)
	r, err := Open(remote.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for rev, want := range map[string]string{"HEAD": "2", "HEAD~1": "1", "main": "2", "v1": "1", c1: "1"} {
		snap, err := r.SnapshotAt(context.Background(), rev)
		if err != nil {
			t.Fatalf("SnapshotAt(%s): %v", rev, err)
		}
		if got := readFile(t, snap, "v.txt"); got != want {
			t.Errorf("SnapshotAt(%s): v.txt = %q, want %q", rev, got, want)
		}
	}
	if _, err := r.SnapshotAt(context.Background(), "no-such-branch"); !errors.Is(err, ErrCommitNotFound) {
		t.Errorf("SnapshotAt(no-such-branch) = %v, want ErrCommitNotFound", err)
	}
	if _, err := Open(t.TempDir()); err == nil {
		t.Error("Open of a directory that is no repository succeeded")
	}
}
