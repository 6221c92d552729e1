package sources

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/kudod-dev/kudod/test/testenv"
)

// refsRepo builds a remote with every kind of ref:
//
//	c1 ← c2 ← c3 ← c4   main
//	v0.1.0 (lightweight) on c1, v1.0.0 (annotated) on c2, v1.2.0 (lightweight) on c3,
//	v2.0.0-rc.1 (annotated) on c4, branch release on c2, refs/pull/7/head on c3.
func refsRepo(t *testing.T) (*testenv.GitRepo, [4]string) {
	r := testenv.NewGitRepo(t)
	var c [4]string
	for i := range c {
		c[i] = r.Commit("commit", map[string]string{"n.txt": string(rune('1' + i))})
	}
	r.Git("tag", "v0.1.0", c[0])
	r.Git("tag", "-a", "v1.0.0", "-m", "one", c[1])
	r.Git("tag", "v1.2.0", c[2])
	r.Git("tag", "-a", "v2.0.0-rc.1", "-m", "rc", c[3])
	r.Git("tag", "not-a-version", c[3])
	r.Git("branch", "release", c[1])
	r.Git("update-ref", "refs/pull/7/head", c[2])
	return r, c
}

// TestRefKinds resolves each kind of `ref` of docs/configuration.md to its commit and full ref
// name.
func TestRefKinds(t *testing.T) {
	remote, c := refsRepo(t)
	for _, tc := range []struct {
		name     string
		ref      Ref
		commit   string
		refName  string
		contents string
	}{
		{"default branch", Ref{}, c[3], "refs/heads/main", "4"},
		{"branch", Ref{Branch: "release"}, c[1], "refs/heads/release", "2"},
		{"annotated tag", Ref{Tag: "v1.0.0"}, c[1], "refs/tags/v1.0.0", "2"},
		{"lightweight tag", Ref{Tag: "v1.2.0"}, c[2], "refs/tags/v1.2.0", "3"},
		{"semver skips prereleases", Ref{SemVer: ">=1.0.0"}, c[2], "refs/tags/v1.2.0", "3"},
		{"semver patch range", Ref{SemVer: "~1.0"}, c[1], "refs/tags/v1.0.0", "2"},
		{"semver with prereleases", Ref{SemVer: ">=2.0.0-0"}, c[3], "refs/tags/v2.0.0-rc.1", "4"},
		{"full ref name", Ref{Name: "refs/pull/7/head"}, c[2], "refs/pull/7/head", "3"},
		{"full branch name", Ref{Name: "refs/heads/release"}, c[1], "refs/heads/release", "2"},
		{"pinned commit", Ref{Commit: c[0]}, c[0], "", "1"},
		{"pinned commit on branch", Ref{Commit: c[0], Branch: "release"}, c[0], "refs/heads/release", "1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSource(t, Options{URL: remote.Dir, Ref: tc.ref})
			snap, changed := poll(t, s)
			if snap.Commit != tc.commit || snap.RefName != tc.refName || !changed {
				t.Fatalf("poll = %s %q changed=%v, want %s %q", snap.Commit, snap.RefName, changed, tc.commit, tc.refName)
			}
			if got := readFile(t, snap, "n.txt"); got != tc.contents {
				t.Errorf("n.txt = %q, want %q", got, tc.contents)
			}
			if want := tc.ref.withDefault(); snap.Ref != want {
				t.Errorf("snapshot ref = %+v, want the configured %+v", snap.Ref, want)
			}
		})
	}
}

// TestPinnedCommitNeedsNoRemote: once a pinned commit is cached, polls do not list the remote.
func TestPinnedCommitNeedsNoRemote(t *testing.T) {
	remote, c := refsRepo(t)
	cache := t.TempDir()
	s := newSource(t, Options{URL: remote.Dir, Ref: Ref{Commit: c[1]}, CacheDir: cache})
	poll(t, s)
	poll(t, s)
	wantStats(t, s, 0, 1, 0)
	_ = s.Close()

	restarted := newSource(t, Options{URL: remote.Dir, Ref: Ref{Commit: c[1]}, CacheDir: cache})
	if snap, _ := poll(t, restarted); snap.Commit != c[1] {
		t.Fatalf("poll after restart = %s, want %s", snap.Commit, c[1])
	}
	wantStats(t, restarted, 0, 0, 0)
}

// TestSemverFollowsNewTags: a new tag in the range is picked up by the next poll.
func TestSemverFollowsNewTags(t *testing.T) {
	remote, c := refsRepo(t)
	s := newSource(t, Options{URL: remote.Dir, Ref: Ref{SemVer: "1.x"}})
	if snap, _ := poll(t, s); snap.Commit != c[2] {
		t.Fatalf("poll = %s, want v1.2.0 at %s", snap.Commit, c[2])
	}
	c5 := remote.Commit("five", map[string]string{"n.txt": "5"})
	remote.Git("tag", "-a", "v1.10.0", "-m", "ten", c5)
	snap, changed := poll(t, s)
	if snap.Commit != c5 || !changed || snap.RefName != "refs/tags/v1.10.0" {
		t.Fatalf("poll after tagging v1.10.0 = %s %s changed=%v, want %s", snap.Commit, snap.RefName, changed, c5)
	}
}

// TestMissingRefs: each kind of ref that does not exist is a clear error and no snapshot.
func TestMissingRefs(t *testing.T) {
	remote, c := refsRepo(t)
	for _, tc := range []struct {
		name string
		ref  Ref
		err  error
		msg  string
	}{
		{"branch", Ref{Branch: "nope"}, ErrRefNotFound, "ref not found: branch nope"},
		{"tag", Ref{Tag: "v9.9.9"}, ErrRefNotFound, "ref not found: tag v9.9.9"},
		{"ref name", Ref{Name: "refs/pull/99/head"}, ErrRefNotFound, "ref not found: refs/pull/99/head"},
		{"semver", Ref{SemVer: ">=5.0.0"}, ErrNoMatchingTag,
			`no tag matches the semver range ">=5.0.0" (tags: not-a-version, v0.1.0, v1.0.0, v1.2.0, v2.0.0-rc.1)`},
		{"commit", Ref{Commit: strings.Repeat("0a", 20)}, ErrRefNotFound, "ref not found: commit 0a0a"},
		{"commit not on branch", Ref{Commit: c[3], Branch: "release"}, ErrRefNotFound, "on branch release"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSource(t, Options{URL: "file://" + remote.Dir, Ref: tc.ref})
			snap, _, err := s.Poll(context.Background())
			if !errors.Is(err, tc.err) || !snap.IsZero() {
				t.Fatalf("Poll = %+v, %v; want zero snapshot and %v", snap, err, tc.err)
			}
			want := `repository "app" (file://` + remote.Dir + `): `
			if !strings.HasPrefix(err.Error(), want) || !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("error = %q\nwant it to start with %q and contain %q", err, want, tc.msg)
			}
		})
	}
}

// TestRefValidate covers what a Ref may hold.
func TestRefValidate(t *testing.T) {
	sha := strings.Repeat("a1", 20)
	for _, tc := range []struct {
		ref  Ref
		want string // "" for valid
	}{
		{Ref{}, ""},
		{Ref{Branch: "main"}, ""},
		{Ref{Branch: "feature/x"}, ""},
		{Ref{Tag: "v1.2.0"}, ""},
		{Ref{SemVer: ">=1.0.0 <2"}, ""},
		{Ref{Name: "refs/pull/7/head"}, ""},
		{Ref{Commit: sha}, ""},
		{Ref{Commit: sha, Branch: "main"}, ""},
		{Ref{Branch: "main", Tag: "v1"}, "must set one of"},
		{Ref{Commit: sha, Tag: "v1"}, "must set one of"},
		{Ref{Branch: "a..b"}, "invalid branch"},
		{Ref{Tag: "v1 2"}, "invalid tag"},
		{Ref{SemVer: "banana"}, "invalid semver range"},
		{Ref{Name: "heads/main"}, "must be a full name starting with refs/"},
		{Ref{Commit: "abc123"}, "full 40-character"},
		{Ref{Commit: strings.ToUpper(sha)}, "full 40-character"},
	} {
		err := tc.ref.Validate()
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%+v.Validate() = %v, want %q", tc.ref, err, tc.want)
		}
	}
}
