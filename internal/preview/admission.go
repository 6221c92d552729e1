package preview

import (
	"context"
	"fmt"
	"path"

	"github.com/kudod-dev/kudod/internal/forge"
)

// Authors says which pull requests are previewed (kudod.yaml previews.authors and
// previews.forks; docs/security.md, Previews). A preview renders the pull request's templates
// and sends their objects to the API server as dry-runs, so it runs only for pull requests
// whose author the repository trusts with that: those from the repository's own branches
// (whoever may push a branch there), and those from forks when Forks is set or the author
// matches Patterns.
type Authors struct {
	// Patterns are path.Match patterns of forge user names whose pull requests from forks are
	// previewed.
	Patterns []string
	// Forks: pull requests from forks are previewed whoever opened them.
	Forks bool
}

// Admit says whether a pull request is previewed, and if not, why.
func (a Authors) Admit(pr forge.PullRequest) (bool, string) {
	if !pr.Fork || a.Forks {
		return true, ""
	}
	for _, p := range a.Patterns {
		if ok, err := path.Match(p, pr.Author); err == nil && ok {
			return true, ""
		}
	}
	return false, fmt.Sprintf("not previewed: pull request #%d comes from a fork (%s) by %s, whom previews.authors does not list (previews.forks is false)", pr.Number, orUnknown(pr.HeadRepository), pr.Author)
}

func orUnknown(s string) string {
	if s == "" {
		return "deleted"
	}
	return s
}

// admit decides whether the head of ref is previewed: refs that are not pull requests are the
// repository's own branches and always are; a pull request is asked about on the forge, and
// without a forge to ask only Forks admits it.
func (q *Queue) admit(ctx context.Context, repo Repository, ref string) (bool, string, error) {
	n := pullRequestNumber(ref)
	if n == 0 {
		return true, "", nil
	}
	prs := q.opts.Commenters[repo.Name]
	if prs == nil {
		if repo.Authors.Forks {
			return true, "", nil
		}
		return false, fmt.Sprintf("not previewed: pull request #%d cannot be checked without the repository's status provider (set previews.forks: true to preview every pull request)", n), nil
	}
	pr, err := prs.PullRequest(ctx, n)
	if err != nil {
		return false, "", err
	}
	ok, why := repo.Authors.Admit(pr)
	return ok, why, nil
}
