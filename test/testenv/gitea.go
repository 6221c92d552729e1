package testenv

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"testing"
	"time"
)

// GiteaServer is a running Gitea (hack/gitea.sh) and its admin user.
type GiteaServer struct {
	// URL is the server's base URL, e.g. http://127.0.0.1:23456.
	URL string
	// User and Password are the admin's credentials, made for this server alone.
	User, Password string
	// Dir is the server's state directory (logs/gitea.log).
	Dir string

	http *http.Client
}

// Gitea returns the package's shared Gitea. Tests share it: each creates repositories with
// names of its own (CreateRepo makes them unique).
func Gitea(t testing.TB) *GiteaServer {
	t.Helper()
	return shared(t, "Gitea", startGitea)
}

func startGitea(ctx context.Context) (*GiteaServer, func() error, error) {
	dir, stop, err := upScript(ctx, "gitea.sh")
	if err != nil {
		return nil, stop, err
	}
	vars, err := readEnvFile(filepath.Join(dir, "gitea.env"))
	if err != nil {
		return nil, stop, err
	}
	return &GiteaServer{
		URL:      vars["GITEA_URL"],
		User:     vars["GITEA_USER"],
		Password: vars["GITEA_PASSWORD"],
		Dir:      dir,
		http:     &http.Client{Timeout: 30 * time.Second},
	}, stop, nil
}

// GiteaRepo is a repository on a GiteaServer.
type GiteaRepo struct {
	Owner, Name string
	server      *GiteaServer
}

// CommitStatus is one status of a commit. Gitea takes its state as "state" when a status is
// posted and returns it as "status".
type CommitStatus struct {
	State       string `json:"status"`
	Context     string `json:"context"`
	Description string `json:"description"`
	TargetURL   string `json:"target_url"`
}

// CombinedStatus is a commit's statuses, the latest per context, and their overall state.
type CombinedStatus struct {
	State      string         `json:"state"`
	SHA        string         `json:"sha"`
	TotalCount int            `json:"total_count"`
	Statuses   []CommitStatus `json:"statuses"`
}

// Comment is a comment on an issue or pull request.
type Comment struct {
	ID   int64  `json:"id"`
	Body string `json:"body"`
}

// call sends a JSON request to Gitea's API as the admin and decodes the JSON answer into out
// (when not nil). Any status but 2xx is an error quoting Gitea's answer.
func (g *GiteaServer) call(ctx context.Context, method, path string, in, out any) error {
	return g.callAs(ctx, "", method, path, in, out)
}

// callAs is call acting as another user (Gitea's Sudo header; "" is the admin).
func (g *GiteaServer) callAs(ctx context.Context, sudo, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		data, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		body = bytes.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, method, g.URL+"/api/v1"+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.SetBasicAuth(g.User, g.Password)
	if sudo != "" {
		req.Header.Set("Sudo", sudo)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := g.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("%s %s: decoding the answer: %w", method, path, err)
		}
	}
	return nil
}

// must runs a Gitea API call for a test helper, failing the test on error.
func (g *GiteaServer) must(t testing.TB, method, path string, in, out any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := g.call(ctx, method, path, in, out); err != nil {
		t.Fatalf("testenv: Gitea: %v", err)
	}
}

// CreateRepo creates an empty private repository owned by the admin, named after name and the
// test plus a unique suffix; its default branch is main.
func (g *GiteaServer) CreateRepo(t testing.TB, name string) *GiteaRepo {
	t.Helper()
	var created struct {
		Name  string `json:"name"`
		Owner struct {
			Login string `json:"login"`
		} `json:"owner"`
	}
	g.must(t, http.MethodPost, "/user/repos", map[string]any{
		"name":           namespaceName(name + "-" + t.Name()),
		"private":        true,
		"auto_init":      false,
		"default_branch": "main",
	}, &created)
	return &GiteaRepo{Owner: created.Owner.Login, Name: created.Name, server: g}
}

// CreateToken creates an access token of the admin with the given scopes (e.g.
// "write:repository") and returns it. Git over HTTP takes it as the password.
func (g *GiteaServer) CreateToken(t testing.TB, name string, scopes ...string) string {
	t.Helper()
	var token struct {
		SHA1 string `json:"sha1"`
	}
	g.must(t, http.MethodPost, "/users/"+url.PathEscape(g.User)+"/tokens", map[string]any{
		"name":   namespaceName(name + "-" + t.Name()),
		"scopes": scopes,
	}, &token)
	return token.SHA1
}

// CloneURL is the repository's HTTP clone URL, without credentials.
func (r *GiteaRepo) CloneURL() string {
	return r.server.URL + "/" + r.Owner + "/" + r.Name + ".git"
}

func (r *GiteaRepo) path() string {
	return "/repos/" + url.PathEscape(r.Owner) + "/" + url.PathEscape(r.Name)
}

// Push commits the content of dir as the whole tree of branch, on top of the branch's last
// commit (or of main when the branch is new, so that pull requests share history), pushes it
// over HTTP with the admin's credentials and returns the new commit's SHA.
func (r *GiteaRepo) Push(t testing.TB, dir, branch, message string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sha, err := pushTree(ctx, r.CloneURL(), r.server.User, r.server.Password, dir, branch, message)
	if err != nil {
		t.Fatalf("testenv: pushing %s to %s of %s: %v", dir, branch, r.CloneURL(), err)
	}
	return sha
}

// Refs lists the repository's refs and the commits they point at, as `git ls-remote` sees them
// (refs/heads/..., refs/pull/N/head, ...).
func (r *GiteaRepo) Refs(t testing.TB) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	refs, err := lsRemote(ctx, r.CloneURL(), r.server.User, r.server.Password)
	if err != nil {
		t.Fatalf("testenv: listing the refs of %s: %v", r.CloneURL(), err)
	}
	return refs
}

// SetStatus posts a commit status as the admin.
func (r *GiteaRepo) SetStatus(t testing.TB, sha string, s CommitStatus) {
	t.Helper()
	r.server.must(t, http.MethodPost, r.path()+"/statuses/"+sha, map[string]string{
		"state":       s.State,
		"context":     s.Context,
		"description": s.Description,
		"target_url":  s.TargetURL,
	}, nil)
}

// CombinedStatus reads a commit's combined status.
func (r *GiteaRepo) CombinedStatus(t testing.TB, sha string) CombinedStatus {
	t.Helper()
	var s CombinedStatus
	r.server.must(t, http.MethodGet, r.path()+"/commits/"+sha+"/status", nil, &s)
	return s
}

// Statuses lists every status posted on a commit, oldest first (not only the latest per
// context, as CombinedStatus does).
func (r *GiteaRepo) Statuses(t testing.TB, sha string) []CommitStatus {
	t.Helper()
	var all []CommitStatus
	for page := 1; ; page++ {
		var statuses []CommitStatus
		r.server.must(t, http.MethodGet, fmt.Sprintf("%s/statuses/%s?sort=oldest&limit=50&page=%d", r.path(), sha, page), nil, &statuses)
		all = append(all, statuses...)
		if len(statuses) < 50 {
			return all
		}
	}
}

// OpenPullRequest opens a pull request from head into base and returns its number; Gitea
// publishes its head as refs/pull/<number>/head.
func (r *GiteaRepo) OpenPullRequest(t testing.TB, head, base, title string) int {
	t.Helper()
	var pr struct {
		Number int `json:"number"`
	}
	r.server.must(t, http.MethodPost, r.path()+"/pulls", map[string]string{"head": head, "base": base, "title": title}, &pr)
	return pr.Number
}

// Comments lists the comments on an issue or pull request.
func (r *GiteaRepo) Comments(t testing.TB, number int) []Comment {
	t.Helper()
	var comments []Comment
	r.server.must(t, http.MethodGet, fmt.Sprintf("%s/issues/%d/comments", r.path(), number), nil, &comments)
	return comments
}

// CreateWebhook makes Gitea POST the given events (e.g. "push") as JSON to target, signed with
// secret (X-Gitea-Signature, hex HMAC-SHA256 of the body), and returns the hook's ID. Loopback
// targets are allowed.
func (r *GiteaRepo) CreateWebhook(t testing.TB, target, secret string, events ...string) int64 {
	t.Helper()
	var hook struct {
		ID int64 `json:"id"`
	}
	r.server.must(t, http.MethodPost, r.path()+"/hooks", map[string]any{
		"type":          "gitea",
		"active":        true,
		"events":        events,
		"branch_filter": "*",
		"config":        map[string]string{"url": target, "content_type": "json", "secret": secret},
	}, &hook)
	return hook.ID
}

// CreateUser creates a user with a name derived from name and the test's, and returns its login.
// The admin acts as it with the As methods.
func (g *GiteaServer) CreateUser(t testing.TB, name string) string {
	t.Helper()
	login := namespaceName(name)
	g.must(t, http.MethodPost, "/admin/users", map[string]any{
		"username": login, "email": login + "@example.com", "password": "Pw-" + login, "must_change_password": false,
	}, nil)
	return login
}

// AddCollaborator gives a user write access to the repository.
func (r *GiteaRepo) AddCollaborator(t testing.TB, login string) {
	t.Helper()
	r.server.must(t, http.MethodPut, r.path()+"/collaborators/"+url.PathEscape(login), map[string]string{"permission": "write"}, nil)
}

// ForkAs forks the repository into login's account (login must be able to read it) and returns
// the fork; the admin pushes to it with Push.
func (r *GiteaRepo) ForkAs(t testing.TB, login string) *GiteaRepo {
	t.Helper()
	var fork struct {
		Name  string `json:"name"`
		Owner struct {
			Login string `json:"login"`
		} `json:"owner"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.server.callAs(ctx, login, http.MethodPost, r.path()+"/forks", map[string]any{}, &fork); err != nil {
		t.Fatalf("testenv: Gitea: %v", err)
	}
	return &GiteaRepo{Owner: fork.Owner.Login, Name: fork.Name, server: r.server}
}

// OpenPullRequestAs opens a pull request as login from head ("branch", or "owner:branch" for a
// fork's branch) into base, and returns its number.
func (r *GiteaRepo) OpenPullRequestAs(t testing.TB, login, head, base, title string) int {
	t.Helper()
	var pr struct {
		Number int `json:"number"`
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.server.callAs(ctx, login, http.MethodPost, r.path()+"/pulls", map[string]string{"head": head, "base": base, "title": title}, &pr); err != nil {
		t.Fatalf("testenv: Gitea: %v", err)
	}
	return pr.Number
}

// CommentAs comments on an issue or pull request as login and returns the comment's ID.
func (r *GiteaRepo) CommentAs(t testing.TB, login string, number int, body string) int64 {
	t.Helper()
	var c Comment
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := r.server.callAs(ctx, login, http.MethodPost, fmt.Sprintf("%s/issues/%d/comments", r.path(), number), map[string]string{"body": body}, &c); err != nil {
		t.Fatalf("testenv: Gitea: %v", err)
	}
	return c.ID
}
