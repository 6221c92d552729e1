package testenv

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// GitRepo is a real git repository in a temporary directory, for tests that commit packages
// and instance files and let kudod read them (file://Dir, or served over HTTP). git runs
// without the user's or the system's configuration, so a commit is the same on every machine.
type GitRepo struct {
	// Dir is the work tree, a directory named app: served over HTTP from its parent it is
	// /app/.git.
	Dir string
	t   testing.TB
	env []string
}

// NewGitRepo makes an empty repository on branch main; without git the test is skipped.
func NewGitRepo(t testing.TB) *GitRepo {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git is not installed (hack/test-deps.sh installs it)")
	}
	r := &GitRepo{Dir: filepath.Join(t.TempDir(), "app"), t: t, env: append(os.Environ(),
		"HOME="+t.TempDir(),
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_AUTHOR_NAME=kudod test", "GIT_AUTHOR_EMAIL=test@kudod.dev",
		"GIT_COMMITTER_NAME=kudod test", "GIT_COMMITTER_EMAIL=test@kudod.dev",
	)}
	if err := os.MkdirAll(r.Dir, 0o755); err != nil {
		t.Fatal(err)
	}
	r.Git("init", "-q", "-b", "main")
	return r
}

// Git runs git in the work tree and returns its trimmed output; a failure fails the test.
func (r *GitRepo) Git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.Dir
	cmd.Env = r.env
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Write writes files (slash-separated paths) into the work tree; an empty content removes the
// file (or folder).
func (r *GitRepo) Write(files map[string]string) {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.Dir, filepath.FromSlash(name))
		if content == "" {
			if err := os.RemoveAll(p); err != nil {
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
}

// Commit writes files and commits the whole work tree, returning the commit's SHA.
func (r *GitRepo) Commit(msg string, files map[string]string) string {
	r.t.Helper()
	r.Write(files)
	r.Git("add", "-A")
	r.Git("commit", "-q", "--allow-empty", "-m", msg)
	return r.Git("rev-parse", "HEAD")
}

// AddOperator writes a test package (testdata/operators/<name>/<version>, FixtureOperator)
// into the work tree at operators/<name>/<version>.
func (r *GitRepo) AddOperator(name, version string) {
	r.t.Helper()
	r.Write(FixtureOperatorFiles(r.t, name, version))
}

// AddCatalogOperator writes a public KUDO package from $KUDOD_OPERATORS_DIR (CatalogOperator)
// into the work tree at operators/<name>/<version>; without that directory the test is skipped.
func (r *GitRepo) AddCatalogOperator(name, version string) {
	r.t.Helper()
	r.Write(packageFiles(r.t, CatalogOperator(r.t, name, version), name, version))
}
