package forge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// apiBase returns the forge's API base URL: rawURL when it already ends in apiPath, else
// rawURL with apiPath appended.
func apiBase(rawURL, apiPath string) string {
	u := strings.TrimSuffix(rawURL, "/")
	if strings.HasSuffix(u, apiPath) {
		return u
	}
	return u + apiPath
}

// gitHubAPIBase maps github.com to api.github.com and a GitHub Enterprise Server's web
// address to its /api/v3.
func gitHubAPIBase(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return rawURL // newAPIClient reports it
	}
	switch strings.ToLower(u.Host) {
	case "github.com", "www.github.com", "api.github.com":
		return "https://api.github.com"
	}
	return apiBase(rawURL, "/api/v3")
}

// checkStatus refuses what no forge would take, before any request.
func checkStatus(s Status) error {
	if n := len(s.SHA); (n != 40 && n != 64) || strings.Trim(strings.ToLower(s.SHA), "0123456789abcdef") != "" {
		return fmt.Errorf("commit status %s: %q is not a full commit SHA", s.Context, s.SHA)
	}
	if s.Context == "" {
		return fmt.Errorf("commit status on %s: the context is empty", s.SHA)
	}
	switch s.State {
	case StatePending, StateSuccess, StateFailure, StateError:
		return nil
	}
	return fmt.Errorf("commit status %s on %s: unknown state %q", s.Context, s.SHA, s.State)
}

// gitea posts to Gitea's API v1 (also Forgejo's).
type gitea struct {
	c    *apiClient
	repo string // /repos/{owner}/{repo}, escaped
	name string
}

func newGitea(s Repository, token tokenSource, opts Options) (*gitea, error) {
	c, err := newAPIClient(apiBase(s.URL, "/api/v1"), token, opts,
		func(h http.Header, t string) { h.Set("Authorization", "token "+t) }, nil)
	if err != nil {
		return nil, err
	}
	return &gitea{c: c, repo: "/repos/" + url.PathEscape(s.Owner) + "/" + url.PathEscape(s.Repo), name: s.Owner + "/" + s.Repo}, nil
}

func (g *gitea) SetStatus(ctx context.Context, s Status) error {
	if err := checkStatus(s); err != nil {
		return err
	}
	body := map[string]string{
		"state":       string(s.State),
		"context":     s.Context,
		"description": truncate(s.Description, MaxDescriptionLength),
		"target_url":  s.TargetURL,
	}
	if _, err := g.c.call(ctx, http.MethodPost, g.c.url(g.repo+"/statuses/"+s.SHA, nil), body, nil); err != nil {
		return fmt.Errorf("gitea %s: commit status %s on %s: %w", g.name, s.Context, s.SHA, err)
	}
	return nil
}

func (g *gitea) UpsertComment(ctx context.Context, number int, marker, body string) error {
	issue := g.repo + "/issues/" + strconv.Itoa(number)
	api := commentAPI{
		list:   g.c.url(issue+"/comments", nil),
		create: g.c.url(issue+"/comments", nil),
		update: func(id int64) (string, string) {
			return http.MethodPatch, g.c.url(g.repo+"/issues/comments/"+strconv.FormatInt(id, 10), nil)
		},
		self: g.c.url("/user", nil),
	}
	if err := upsertComment(ctx, g.c, api, giteaMaxComment, marker, body); err != nil {
		return fmt.Errorf("gitea %s: pull request #%d: %w", g.name, number, err)
	}
	return nil
}

func (g *gitea) MaxCommentLength() int { return giteaMaxComment }

// gitHub posts to the GitHub REST API, on github.com or a GitHub Enterprise Server.
type gitHub struct {
	c    *apiClient
	repo string // /repos/{owner}/{repo}, escaped
	name string
}

// gitHubAPIVersion is the REST API version kudod is written against.
const gitHubAPIVersion = "2022-11-28"

func newGitHub(s Repository, token tokenSource, opts Options) (*gitHub, error) {
	headers := http.Header{}
	headers.Set("Accept", "application/vnd.github+json")
	headers.Set("X-GitHub-Api-Version", gitHubAPIVersion)
	c, err := newAPIClient(gitHubAPIBase(s.URL), token, opts,
		func(h http.Header, t string) { h.Set("Authorization", "Bearer "+t) }, headers)
	if err != nil {
		return nil, err
	}
	return &gitHub{c: c, repo: "/repos/" + url.PathEscape(s.Owner) + "/" + url.PathEscape(s.Repo), name: s.Owner + "/" + s.Repo}, nil
}

// gitHubStatus is the body of "Create a commit status".
type gitHubStatus struct {
	State       string `json:"state"`
	Context     string `json:"context"`
	Description string `json:"description"`
	TargetURL   string `json:"target_url,omitempty"`
}

func (g *gitHub) SetStatus(ctx context.Context, s Status) error {
	if err := checkStatus(s); err != nil {
		return err
	}
	body := gitHubStatus{State: string(s.State), Context: s.Context, Description: truncate(s.Description, MaxDescriptionLength), TargetURL: s.TargetURL}
	if _, err := g.c.call(ctx, http.MethodPost, g.c.url(g.repo+"/statuses/"+s.SHA, nil), body, nil); err != nil {
		return fmt.Errorf("github %s: commit status %s on %s: %w", g.name, s.Context, s.SHA, err)
	}
	return nil
}

func (g *gitHub) UpsertComment(ctx context.Context, number int, marker, body string) error {
	issue := g.repo + "/issues/" + strconv.Itoa(number)
	api := commentAPI{
		list:   g.c.url(issue+"/comments", url.Values{"per_page": {"100"}}),
		create: g.c.url(issue+"/comments", nil),
		update: func(id int64) (string, string) {
			return http.MethodPatch, g.c.url(g.repo+"/issues/comments/"+strconv.FormatInt(id, 10), nil)
		},
		self: g.c.url("/user", nil),
	}
	if err := upsertComment(ctx, g.c, api, gitHubMaxComment, marker, body); err != nil {
		return fmt.Errorf("github %s: pull request #%d: %w", g.name, number, err)
	}
	return nil
}

func (g *gitHub) MaxCommentLength() int { return gitHubMaxComment }

// gitLab posts to the GitLab REST API v4, on gitlab.com or a self-managed instance.
type gitLab struct {
	c       *apiClient
	project string // /projects/{url-encoded path}
	name    string
}

func newGitLab(s Repository, token tokenSource, opts Options) (*gitLab, error) {
	c, err := newAPIClient(apiBase(s.URL, "/api/v4"), token, opts,
		func(h http.Header, t string) { h.Set("PRIVATE-TOKEN", t) }, nil)
	if err != nil {
		return nil, err
	}
	// GitLab takes a project's path as its id when the path is URL-encoded, slashes included.
	return &gitLab{c: c, project: "/projects/" + url.PathEscape(strings.Trim(s.Project, "/")), name: s.Project}, nil
}

// gitLabState maps kudod's states to GitLab's (pending, running, success, failed, canceled):
// a pending status means the plan is running; error (kudod could not act, or the plan was
// superseded) is GitLab's canceled, which like failed blocks "pipelines must succeed" but does
// not blame the change.
func gitLabState(s State) string {
	switch s {
	case StatePending:
		return "running"
	case StateFailure:
		return "failed"
	case StateError:
		return "canceled"
	default:
		return string(s)
	}
}

// gitLabStatus is the body of "Set the pipeline status of a commit".
type gitLabStatus struct {
	State       string `json:"state"`
	Name        string `json:"name"`
	Description string `json:"description"`
	TargetURL   string `json:"target_url,omitempty"`
}

func (g *gitLab) SetStatus(ctx context.Context, s Status) error {
	if err := checkStatus(s); err != nil {
		return err
	}
	body := gitLabStatus{State: gitLabState(s.State), Name: s.Context, Description: truncate(s.Description, MaxDescriptionLength), TargetURL: s.TargetURL}
	_, err := g.c.call(ctx, http.MethodPost, g.c.url(g.project+"/statuses/"+s.SHA, nil), body, nil)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusBadRequest && strings.Contains(apiErr.Message, "Cannot transition status") {
		// GitLab refuses to move a status to the state it is in ("Cannot transition status via
		// :run from :running"): the commit already shows that state.
		return nil
	}
	if err != nil {
		return fmt.Errorf("gitlab %s: commit status %s on %s: %w", g.name, s.Context, s.SHA, err)
	}
	return nil
}

func (g *gitLab) UpsertComment(ctx context.Context, number int, marker, body string) error {
	notes := g.project + "/merge_requests/" + strconv.Itoa(number) + "/notes"
	api := commentAPI{
		list:   g.c.url(notes, url.Values{"per_page": {"100"}, "sort": {"asc"}, "order_by": {"created_at"}}),
		create: g.c.url(notes, nil),
		update: func(id int64) (string, string) {
			return http.MethodPut, g.c.url(notes+"/"+strconv.FormatInt(id, 10), nil)
		},
		self: g.c.url("/user", nil),
	}
	if err := upsertComment(ctx, g.c, api, gitLabMaxComment, marker, body); err != nil {
		return fmt.Errorf("gitlab %s: merge request !%d: %w", g.name, number, err)
	}
	return nil
}

func (g *gitLab) MaxCommentLength() int { return gitLabMaxComment }
