// Package forge talks to the git hosts kudod's repositories live on (docs/design.md, Statuses
// and Previews; docs/configuration.md, repositories[]): it posts commit statuses and
// pull-request comments to Gitea, GitHub and GitLab, and receives their webhooks.
//
//   - A Provider is one repository on one forge: NewProvider builds it from a Repository. Every call reads the API token afresh (so rotating the file works),
//     retries network errors and 5xx answers with jittered exponential backoff, and waits out
//     429s, Retry-After and GitHub's and GitLab's rate-limit headers, within a bound.
//   - A Reporter is the daemon's one asynchronous status queue: Report never blocks, a full
//     queue drops its oldest status, posts happen in order per repository, and a status the
//     forge already shows is not posted again.
//   - A Webhook is the http.Handler of POST /hooks/<repository>: it checks the delivery's
//     signature against the repository's secret and calls OnPush or OnPullRequest.
//
// Tokens and secrets are never logged and never part of an error.
package forge

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// State is the state of a commit status (docs/design.md, Statuses).
type State string

// Commit status states.
const (
	// StatePending: a plan for the commit is running.
	StatePending State = "pending"
	// StateSuccess: the plan completed.
	StateSuccess State = "success"
	// StateFailure: the change was rejected or its plan failed.
	StateFailure State = "failure"
	// StateError: kudod could not act on the commit (cluster unreachable, plan superseded).
	StateError State = "error"
)

// MaxDescriptionLength is the most characters (runes) of a status description kudod sends:
// forges cap descriptions at 140 characters. The forge cuts longer descriptions itself
// (Reporter.Report, Provider.SetStatus): callers pass whole sentences.
const MaxDescriptionLength = 139

// Commit status contexts: one per instance, one for a commit that was held as a whole, one for
// the preview of a pull request's head.
const (
	ContextRepository = "kudod"
	ContextPreview    = "kudod/preview"
)

// InstanceContext is the commit status context of an instance: kudod/<namespace>/<name>.
func InstanceContext(namespace, name string) string {
	return ContextRepository + "/" + namespace + "/" + name
}

// StatusReporter takes commit statuses; Report must not block (a plan is running). Reporter
// is the one kudod runs; tests collect statuses with their own.
type StatusReporter interface {
	Report(s Status)
}

// Status is one commit status of one of kudod's repositories.
type Status struct {
	// Repository is the configured repository's name (kudod.yaml repositories[].name).
	Repository string
	// SHA is the commit's full SHA.
	SHA string
	// Context tells statuses of a commit apart: InstanceContext, ContextPreview, ContextRepository.
	Context string
	State   State
	// Description is cut to MaxDescriptionLength characters, ending with "…", when longer.
	Description string
	// TargetURL is an optional link shown with the status.
	TargetURL string
}

func (s Status) String() string {
	sha := s.SHA
	if len(sha) > 12 {
		sha = sha[:12]
	}
	return fmt.Sprintf("%s@%s %s %s: %s", s.Repository, sha, s.Context, s.State, s.Description)
}

// Provider is one repository on a forge.
type Provider interface {
	// SetStatus posts a commit status.
	SetStatus(ctx context.Context, s Status) error
	// UpsertComment makes sure that pull request (GitLab: merge request) number has one comment
	// of kudod containing marker, a hidden HTML comment such as
	// <!-- kudod-preview:platform -->: it edits the first such comment to read body, or creates
	// it. The marker is put in front of body when body does not contain it. A body longer than
	// MaxCommentLength is an error.
	UpsertComment(ctx context.Context, number int, marker, body string) error
	// MaxCommentLength is the longest comment body, in characters, the forge accepts.
	MaxCommentLength() int
	// PullRequest tells who opened pull request (GitLab: merge request) number and whether
	// its head branch lives in a fork: previews of pull requests run only for the authors and
	// branches the repository admits (docs/security.md, Previews).
	PullRequest(ctx context.Context, number int) (PullRequest, error)
}

// Kind is a forge's API.
type Kind string

// The forges kudod talks to.
const (
	// Gitea is Gitea's API v1 (also Forgejo's).
	Gitea Kind = "gitea"
	// GitHub is GitHub's REST API, on github.com or a GitHub Enterprise Server.
	GitHub Kind = "github"
	// GitLab is GitLab's REST API v4.
	GitLab Kind = "gitlab"
)

// Repository is one repository on a forge, and the API token kudod uses there.
type Repository struct {
	// Kind is the forge's API.
	Kind Kind
	// URL is the forge's web address (https://github.com, https://gitlab.example.com/gitlab,
	// https://git.example.com) or its API base (https://ghe.example.com/api/v3, .../api/v4,
	// .../api/v1).
	URL string
	// TokenFile or TokenEnv (an environment variable's name) holds the API token; exactly one
	// is set. It is read for every request, so a rotated token takes effect at once.
	TokenFile string
	TokenEnv  string
	// Owner and Repo name the repository on Gitea and GitHub; Project (group/name) on GitLab.
	Owner   string
	Repo    string
	Project string
}

// Options tunes the providers NewProvider makes.
type Options struct {
	// HTTPClient sends the requests; by default a client with a 30s timeout per request.
	HTTPClient *http.Client
	// UserAgent is sent with every request (GitHub requires one); "kudod" by default.
	UserAgent string
}

// Per-request timeout of the default HTTP client.
const defaultRequestTimeout = 30 * time.Second

// NewProvider returns the provider of a repository on a forge.
func NewProvider(s Repository, opts Options) (Provider, error) {
	token, err := newTokenSource(s)
	if err != nil {
		return nil, err
	}
	if opts.HTTPClient == nil {
		opts.HTTPClient = &http.Client{Timeout: defaultRequestTimeout}
	}
	if opts.UserAgent == "" {
		opts.UserAgent = "kudod"
	}
	switch s.Kind {
	case Gitea:
		if s.Owner == "" || s.Repo == "" {
			return nil, fmt.Errorf("gitea status provider: owner and repo are required")
		}
		return newGitea(s, token, opts)
	case GitHub:
		if s.Owner == "" || s.Repo == "" {
			return nil, fmt.Errorf("github status provider: owner and repo are required")
		}
		return newGitHub(s, token, opts)
	case GitLab:
		if s.Project == "" {
			return nil, fmt.Errorf("gitlab status provider: project is required")
		}
		return newGitLab(s, token, opts)
	default:
		return nil, fmt.Errorf("unknown status provider %q (use gitea, github or gitlab)", s.Kind)
	}
}

// truncate cuts s to at most n runes, the last being "…".
func truncate(s string, n int) string {
	if len(s) <= n { // bytes ≥ runes
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
