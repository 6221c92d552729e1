package sources

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// gitRepo is a real repository on disk that tests commit to with the git CLI; Sources read
// it as their remote.
type gitRepo struct {
	t   testing.TB
	dir string
	env []string
}

func newGitRepo(t testing.TB) *gitRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed (hack/test-deps.sh installs it)")
	}
	home := t.TempDir()
	r := &gitRepo{t: t, dir: filepath.Join(t.TempDir(), "app"), env: append(os.Environ(),
		"HOME="+home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=kudod test", "GIT_AUTHOR_EMAIL=test@kudod.dev",
		"GIT_COMMITTER_NAME=kudod test", "GIT_COMMITTER_EMAIL=test@kudod.dev",
	)}
	if err := os.MkdirAll(r.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.git("init", "-q", "-b", "main")
	return r
}

// git runs git in the repository and returns its trimmed output.
func (r *gitRepo) git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.dir
	cmd.Env = r.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// commit writes files (an empty content deletes the file) and commits them, returning the SHA.
func (r *gitRepo) commit(msg string, files map[string]string) string {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.dir, filepath.FromSlash(name))
		if content == "" {
			if err := os.Remove(p); err != nil {
				r.t.Fatal(err)
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			r.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			r.t.Fatal(err)
		}
	}
	r.git("add", "-A")
	r.git("commit", "-q", "--allow-empty", "-m", msg)
	return r.git("rev-parse", "HEAD")
}

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
