package testenv

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// GitRepo is a real git repository in a temporary directory, for tests that commit packages
// and instance files and let kudod read them (file://Dir, or served over HTTP).
type GitRepo struct {
	// Dir is the work tree.
	Dir string
	t   testing.TB
}

// NewGitRepo makes an empty repository on branch main.
func NewGitRepo(t testing.TB) *GitRepo {
	t.Helper()
	r := &GitRepo{Dir: t.TempDir(), t: t}
	r.Git("init", "-q", "-b", "main")
	r.Git("config", "user.email", "test@kudod.dev")
	r.Git("config", "user.name", "test")
	return r
}

// Git runs git in the work tree and returns its trimmed output; a failure fails the test.
func (r *GitRepo) Git(args ...string) string {
	r.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = r.Dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.t.Fatalf("git %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out))
}

// Write writes files into the work tree; an empty content removes the file (or folder).
func (r *GitRepo) Write(files map[string]string) {
	r.t.Helper()
	for name, content := range files {
		p := filepath.Join(r.Dir, name)
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

// AddOperator writes a real package from ../shared/operators (beside the checkout) into the
// work tree at operators/<name>/<version>.
func (r *GitRepo) AddOperator(name, version string) {
	r.t.Helper()
	root, err := repoRoot()
	if err != nil {
		r.t.Fatal(err)
	}
	src := filepath.Join(root, "..", "shared", "operators", name, version)
	files := map[string]string{}
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		files[filepath.Join("operators", name, version, rel)] = string(data)
		return err
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.Write(files)
}
