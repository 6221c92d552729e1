package forge

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// TestGitHubPullRequest: GET /repos/{owner}/{repo}/pulls/{pull_number} as GitHub documents it;
// the author is user.login, a fork is a head repository other than the base (or deleted).
func TestGitHubPullRequest(t *testing.T) {
	answers := map[string]string{
		"/api/v3/repos/ops/platform/pulls/7": `{"number":7,"user":{"login":"alice","id":1},
			"head":{"ref":"feature","repo":{"id":10,"full_name":"ops/platform"}},"base":{"ref":"main","repo":{"id":10,"full_name":"ops/platform"}}}`,
		"/api/v3/repos/ops/platform/pulls/8": `{"number":8,"user":{"login":"mallory","id":2},
			"head":{"ref":"main","repo":{"id":99,"full_name":"mallory/platform"}},"base":{"ref":"main","repo":{"id":10,"full_name":"ops/platform"}}}`,
		"/api/v3/repos/ops/platform/pulls/9":  `{"number":9,"user":{"login":"gone","id":3},"head":{"ref":"x","repo":null},"base":{"ref":"main","repo":{"id":10,"full_name":"ops/platform"}}}`,
		"/api/v3/repos/ops/platform/pulls/10": `{"number":10,"user":null,"head":{},"base":{}}`,
	}
	var rec recorder
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := rec.add(t, r)
		checkGitHubHeaders(t, req)
		body, ok := answers[r.URL.Path]
		if r.Method != http.MethodGet || !ok || r.URL.RawQuery != "" {
			t.Errorf("unexpected request %s %s", r.Method, r.URL)
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	p, _ := testProvider(t, githubStatus(srv.URL, tokenFile(t, token)))
	for n, want := range map[int]PullRequest{
		7: {Number: 7, Author: "alice", HeadRepository: "ops/platform"},
		8: {Number: 8, Author: "mallory", Fork: true, HeadRepository: "mallory/platform"},
		9: {Number: 9, Author: "gone", Fork: true},
	} {
		got, err := p.PullRequest(ctxT(t), n)
		if err != nil || got != want {
			t.Errorf("PullRequest(%d) = %+v, %v; want %+v", n, got, err, want)
		}
	}
	if _, err := p.PullRequest(ctxT(t), 10); err == nil || !strings.Contains(err.Error(), "names no author") {
		t.Errorf("a pull request without an author: %v", err)
	}
	for _, r := range rec.all() {
		if r.Body != nil {
			t.Errorf("%s %s sent a body", r.Method, r.Path)
		}
	}
}

// TestGitLabMergeRequest: GET /projects/:id/merge_requests/:merge_request_iid as GitLab
// documents it; the author is author.username, a fork a source project other than the target.
func TestGitLabMergeRequest(t *testing.T) {
	const prefix = "/api/v4/projects/infra%2Fteam%2Fplatform/merge_requests/"
	answers := map[string]string{
		prefix + "12": `{"iid":12,"author":{"id":1,"username":"alice"},"source_project_id":5,"target_project_id":5}`,
		prefix + "13": `{"iid":13,"author":{"id":2,"username":"mallory"},"source_project_id":77,"target_project_id":5}`,
		prefix + "14": `{"iid":14,"author":{"id":2,"username":"mallory"},"source_project_id":null,"target_project_id":5}`,
	}
	var rec recorder
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := rec.add(t, r)
		checkGitLabHeaders(t, req)
		body, ok := answers[req.RawPath]
		if r.Method != http.MethodGet || !ok {
			t.Errorf("unexpected request %s %s", r.Method, req.RawPath)
			w.WriteHeader(http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, body)
	}))
	defer srv.Close()
	p, _ := testProvider(t, gitlabStatus(srv.URL, tokenFile(t, token)))
	for n, want := range map[int]PullRequest{
		12: {Number: 12, Author: "alice", HeadRepository: "5"},
		13: {Number: 13, Author: "mallory", Fork: true, HeadRepository: "77"},
		14: {Number: 14, Author: "mallory", Fork: true},
	} {
		got, err := p.PullRequest(ctxT(t), n)
		if err != nil || got != want {
			t.Errorf("PullRequest(%d) = %+v, %v; want %+v", n, got, err, want)
		}
	}
}

// TestUpsertCommentEditsOnlyItsOwn: a comment carrying kudod's marker that someone else wrote
// is never edited, even when the token may edit it (a maintainer's token): kudod makes its own
// comment and then edits that one. The token's account is read once.
func TestUpsertCommentEditsOnlyItsOwn(t *testing.T) {
	var rec recorder
	comments := &fakeComments{}
	const marker = "<!-- kudod-preview:platform -->"
	planted := comments.add(marker+"\nplanted by the pull request's author", otherID)
	srv := gitHubCommentServer(t, &rec, comments, nil)
	defer srv.Close()
	p, _ := testProvider(t, githubStatus(srv.URL, tokenFile(t, token)))
	for _, body := range []string{"first", "second"} {
		if err := p.UpsertComment(ctxT(t), 7, marker, body); err != nil {
			t.Fatal(err)
		}
	}
	mine := comments.withMarker(marker)
	if len(mine) != 2 || mine[0].ID != planted || mine[0].Body != marker+"\nplanted by the pull request's author" || mine[1].Body != marker+"\nsecond" {
		t.Errorf("comments %+v, want the planted one untouched and kudod's own edited", mine)
	}
	users := 0
	for _, r := range rec.all() {
		if r.Path == "/api/v3/user" {
			users++
		}
		if r.Method == http.MethodPatch && r.Path == fmt.Sprintf("/api/v3/repos/ops/platform/issues/comments/%d", planted) {
			t.Error("kudod edited the planted comment")
		}
	}
	if users != 1 {
		t.Errorf("the token's account was read %d times, want once", users)
	}
}

// TestUpsertCommentNeedsItsOwnAccount: without the token's account kudod cannot tell its
// comments apart, and edits none.
func TestUpsertCommentNeedsItsOwnAccount(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v3/user" {
			t.Errorf("unexpected request %s %s", r.Method, r.URL)
		}
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprint(w, `{"message":"Resource not accessible by integration"}`)
	}))
	defer srv.Close()
	p, _ := testProvider(t, githubStatus(srv.URL, tokenFile(t, token)))
	err := p.UpsertComment(ctxT(t), 7, "<!-- m -->", "body")
	if err == nil || !strings.Contains(err.Error(), "reading the token's own account") || !strings.Contains(err.Error(), "403") {
		t.Errorf("UpsertComment: %v, want an error about the token's account", err)
	}
}
