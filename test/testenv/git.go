package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// gitCommand runs the git CLI in dir, isolated from the user's and the system's configuration,
// authenticating over HTTP as user with password. The credentials reach git through a credential
// helper reading the environment, so that they never appear in a URL, an argument or a message.
type gitCommand struct {
	dir, home      string
	user, password string
}

func (g gitCommand) run(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, "git", append([]string{
		"-c", `credential.helper=!f() { test "$1" = get && echo "username=$KUDOD_GIT_USER" && echo "password=$KUDOD_GIT_PASSWORD"; }; f`,
		"-c", "init.defaultBranch=main",
	}, args...)...)
	cmd.Dir = g.dir
	cmd.Env = append(os.Environ(),
		"HOME="+g.home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=kudod test", "GIT_AUTHOR_EMAIL=test@kudod.invalid",
		"GIT_COMMITTER_NAME=kudod test", "GIT_COMMITTER_EMAIL=test@kudod.invalid",
		"KUDOD_GIT_USER="+g.user,
		"KUDOD_GIT_PASSWORD="+g.password,
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("git %s: %w: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// pushTree commits the content of src as the whole tree of branch in the repository at remote,
// on top of the branch (or of main when the branch is new), pushes it and returns the commit.
func pushTree(ctx context.Context, remote, user, password, src, branch, message string) (string, error) {
	tmp, err := os.MkdirTemp("", "kudod-push-")
	if err != nil {
		return "", fmt.Errorf("creating a work tree: %w", err)
	}
	defer os.RemoveAll(tmp)
	work := filepath.Join(tmp, "work")
	if err := os.Mkdir(work, 0o755); err != nil {
		return "", fmt.Errorf("creating a work tree: %w", err)
	}
	git := gitCommand{dir: work, home: tmp, user: user, password: password}

	if _, err := git.run(ctx, "init", "-q"); err != nil {
		return "", err
	}
	refs, err := lsRemote(ctx, remote, user, password)
	if err != nil {
		return "", err
	}
	parent := "refs/heads/" + branch
	if _, ok := refs[parent]; !ok {
		parent = "refs/heads/main"
	}
	if _, ok := refs[parent]; ok {
		if _, err := git.run(ctx, "fetch", "-q", "--depth=1", remote, parent); err != nil {
			return "", err
		}
		// Only the index and HEAD: the work tree is replaced with src below.
		if _, err := git.run(ctx, "reset", "-q", "--soft", "FETCH_HEAD"); err != nil {
			return "", err
		}
	}
	if err := os.CopyFS(work, os.DirFS(src)); err != nil {
		return "", fmt.Errorf("copying %s into a work tree: %w", src, err)
	}
	// -A with the work tree holding exactly src: files src lacks are deleted from the commit.
	if _, err := git.run(ctx, "add", "-A", "."); err != nil {
		return "", err
	}
	if _, err := git.run(ctx, "commit", "-q", "--allow-empty", "-m", message); err != nil {
		return "", err
	}
	if _, err := git.run(ctx, "push", "-q", remote, "HEAD:refs/heads/"+branch); err != nil {
		return "", err
	}
	return git.run(ctx, "rev-parse", "HEAD")
}

// lsRemote lists the refs of the repository at remote.
func lsRemote(ctx context.Context, remote, user, password string) (map[string]string, error) {
	tmp, err := os.MkdirTemp("", "kudod-ls-remote-")
	if err != nil {
		return nil, fmt.Errorf("creating a git home: %w", err)
	}
	defer os.RemoveAll(tmp)
	out, err := gitCommand{dir: tmp, home: tmp, user: user, password: password}.run(ctx, "ls-remote", remote)
	if err != nil {
		return nil, err
	}
	refs := map[string]string{}
	for line := range strings.Lines(out) {
		sha, ref, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if ok {
			refs[ref] = sha
		}
	}
	return refs, nil
}
