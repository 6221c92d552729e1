package forge

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// checkGitHubHeaders checks what GitHub's REST API documents for every request.
func checkGitHubHeaders(t *testing.T, r request) {
	t.Helper()
	want := map[string]string{
		"Authorization":        "Bearer " + token,
		"Accept":               "application/vnd.github+json",
		"X-Github-Api-Version": "2022-11-28",
		"User-Agent":           "kudod",
	}
	if r.Body != nil {
		want["Content-Type"] = "application/json"
	}
	for k, v := range want {
		if got := r.Header.Get(k); got != v {
			t.Errorf("%s %s: header %s = %q, want %q", r.Method, r.Path, k, got, v)
		}
	}
}

func TestGitHubSetStatusRequest(t *testing.T) {
	long := strings.Repeat("é", 200)
	tests := []struct {
		name   string
		status Status
		want   map[string]string
	}{
		{
			name:   "success",
			status: Status{Repository: "platform", SHA: shaA, Context: "kudod/kafka/zk", State: StateSuccess, Description: "update plan COMPLETE (3/3 steps, 14s)"},
			want:   map[string]string{"state": "success", "context": "kudod/kafka/zk", "description": "update plan COMPLETE (3/3 steps, 14s)"},
		},
		{
			name:   "pending",
			status: Status{SHA: shaA, Context: "kudod/kafka/zk", State: StatePending, Description: "deploy plan IN_PROGRESS"},
			want:   map[string]string{"state": "pending", "context": "kudod/kafka/zk", "description": "deploy plan IN_PROGRESS"},
		},
		{
			name:   "failure",
			status: Status{SHA: shaA, Context: "kudod/kafka/zk", State: StateFailure, Description: "deploy FATAL_ERROR in step zookeeper: timeout"},
			want:   map[string]string{"state": "failure", "context": "kudod/kafka/zk", "description": "deploy FATAL_ERROR in step zookeeper: timeout"},
		},
		{
			name:   "error with a target URL",
			status: Status{SHA: shaA, Context: "kudod/preview", State: StateError, Description: "superseded by 89abcde", TargetURL: "https://kudod.example.com/x"},
			want:   map[string]string{"state": "error", "context": "kudod/preview", "description": "superseded by 89abcde", "target_url": "https://kudod.example.com/x"},
		},
		{
			name:   "long description",
			status: Status{SHA: shaA, Context: "kudod/kafka/zk", State: StateFailure, Description: long},
			want:   map[string]string{"state": "failure", "context": "kudod/kafka/zk", "description": strings.Repeat("é", 138) + "…"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var rec recorder
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec.add(t, r)
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(http.StatusCreated)
				fmt.Fprint(w, `{"id":1,"state":"success"}`)
			}))
			defer srv.Close()
			// A GitHub Enterprise Server's web address: the API is under /api/v3.
			p, _ := testProvider(t, githubStatus(srv.URL, tokenFile(t, token)))
			if err := p.SetStatus(ctxT(t), tt.status); err != nil {
				t.Fatal(err)
			}
			reqs := rec.all()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != http.MethodPost || r.Path != "/api/v3/repos/ops/platform/statuses/"+shaA {
				t.Errorf("request %s %s, want POST /api/v3/repos/ops/platform/statuses/%s", r.Method, r.Path, shaA)
			}
			checkGitHubHeaders(t, r)
			exactly(t, "create a commit status", r.Body, tt.want)
			if d, _ := r.Body["description"].(string); utf8.RuneCountInString(d) > MaxDescriptionLength {
				t.Errorf("description of %d characters, want at most %d", utf8.RuneCountInString(d), MaxDescriptionLength)
			}
		})
	}
}

func TestGitHubAPIBase(t *testing.T) {
	for in, want := range map[string]string{
		"https://github.com":              "https://api.github.com",
		"https://github.com/":             "https://api.github.com",
		"https://api.github.com":          "https://api.github.com",
		"https://ghe.example.com":         "https://ghe.example.com/api/v3",
		"https://ghe.example.com/api/v3":  "https://ghe.example.com/api/v3",
		"https://ghe.example.com/api/v3/": "https://ghe.example.com/api/v3",
		"http://127.0.0.1:8080/prefix":    "http://127.0.0.1:8080/prefix/api/v3",
	} {
		if got := gitHubAPIBase(in); got != want {
			t.Errorf("gitHubAPIBase(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSetStatusRefusesBadInput(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s %s", r.Method, r.URL)
	}))
	defer srv.Close()
	p, _ := testProvider(t, githubStatus(srv.URL, tokenFile(t, token)))
	for _, s := range []Status{
		{SHA: "abc123", Context: "kudod/a/b", State: StateSuccess},                               // short SHA
		{SHA: "../../../../user/keys/0123456789abcdef012345", Context: "c", State: StateSuccess}, // path
		{SHA: shaA, Context: "", State: StateSuccess},
		{SHA: shaA, Context: "kudod/a/b", State: "done"},
	} {
		if err := p.SetStatus(ctxT(t), s); err == nil {
			t.Errorf("SetStatus(%+v) succeeded, want an error", s)
		}
	}
}

// fakeComments is a forge's comments on one pull request, served a page at a time.
type fakeComments struct {
	mu       sync.Mutex
	comments []comment
	nextID   int64
}

// The accounts of the fake forges: kudod's token belongs to botID.
const (
	botID   = 42
	otherID = 7
)

// add adds a comment by author (botID, otherID); on GitLab the author is a note's "author".
func (f *fakeComments) add(body string, author int64) int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	f.comments = append(f.comments, comment{ID: f.nextID, Body: body, User: &user{ID: author, Login: fmt.Sprintf("user-%d", author)}})
	return f.nextID
}

// gitLabNotes returns the comments as GitLab's notes: the author under "author".
func gitLabNotes(cs []comment) []comment {
	out := make([]comment, len(cs))
	for i, c := range cs {
		out[i] = comment{ID: c.ID, Body: c.Body, Author: &user{ID: c.User.ID, Username: c.User.Login}}
	}
	return out
}

func (f *fakeComments) page(n, size int) (items []comment, more bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	start := (n - 1) * size
	if start >= len(f.comments) {
		return []comment{}, false
	}
	end := min(start+size, len(f.comments))
	return append([]comment(nil), f.comments[start:end]...), end < len(f.comments)
}

func (f *fakeComments) set(id int64, body string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.comments {
		if f.comments[i].ID == id {
			f.comments[i].Body = body
			return true
		}
	}
	return false
}

func (f *fakeComments) withMarker(marker string) []comment {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []comment
	for _, c := range f.comments {
		if strings.Contains(c.Body, marker) {
			out = append(out, c)
		}
	}
	return out
}

// gitHubCommentServer serves GitHub's issue comments API for pull request 7 of ops/platform,
// as documented: GET/POST /repos/{o}/{r}/issues/{n}/comments, PATCH
// /repos/{o}/{r}/issues/comments/{id}, pages linked with rel="next".
func gitHubCommentServer(t *testing.T, rec *recorder, comments *fakeComments, foreign map[int64]bool) *httptest.Server {
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := rec.add(t, r)
		checkGitHubHeaders(t, req)
		w.Header().Set("Content-Type", "application/json")
		const list = "/api/v3/repos/ops/platform/issues/7/comments"
		switch {
		case r.Method == http.MethodGet && r.URL.Path == "/api/v3/user":
			fmt.Fprintf(w, `{"login":"kudod-bot","id":%d,"type":"User"}`, botID)
		case r.Method == http.MethodGet && r.URL.Path == list:
			if got := r.URL.Query().Get("per_page"); got != "100" {
				t.Errorf("listing comments with per_page=%q, want 100", got)
			}
			page, _ := strconv.Atoi(r.URL.Query().Get("page"))
			if page == 0 {
				page = 1
			}
			items, more := comments.page(page, 100)
			if more {
				w.Header().Set("Link", fmt.Sprintf(`<%s%s?per_page=100&page=%d>; rel="next", <%s%s?per_page=100&page=9>; rel="last"`, srv.URL, list, page+1, srv.URL, list))
			}
			_ = json.NewEncoder(w).Encode(items)
		case r.Method == http.MethodPost && r.URL.Path == list:
			exactly(t, "create an issue comment", req.Body, map[string]string{"body": req.Body["body"].(string)})
			id := comments.add(req.Body["body"].(string), botID)
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"id":%d}`, id)
		case r.Method == http.MethodPatch && strings.HasPrefix(r.URL.Path, "/api/v3/repos/ops/platform/issues/comments/"):
			id, _ := strconv.ParseInt(strings.TrimPrefix(r.URL.Path, "/api/v3/repos/ops/platform/issues/comments/"), 10, 64)
			if foreign[id] {
				w.WriteHeader(http.StatusForbidden)
				fmt.Fprint(w, `{"message":"Must have admin rights to Repository."}`)
				return
			}
			exactly(t, "update an issue comment", req.Body, map[string]string{"body": req.Body["body"].(string)})
			if !comments.set(id, req.Body["body"].(string)) {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			fmt.Fprintf(w, `{"id":%d}`, id)
		default:
			t.Errorf("unexpected request %s %s", r.Method, r.URL)
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	return srv
}

func TestGitHubUpsertCommentPaginatesAndEditsInPlace(t *testing.T) {
	var rec recorder
	comments := &fakeComments{}
	for i := range 150 {
		comments.add(fmt.Sprintf("review comment %d", i), otherID)
	}
	srv := gitHubCommentServer(t, &rec, comments, nil)
	defer srv.Close()
	p, _ := testProvider(t, githubStatus(srv.URL, tokenFile(t, token)))
	const marker = "<!-- kudod-preview:platform -->"

	if err := p.UpsertComment(ctxT(t), 7, marker, "## kudod preview\nfirst"); err != nil {
		t.Fatal(err)
	}
	if err := p.UpsertComment(ctxT(t), 7, marker, "## kudod preview\nsecond"); err != nil {
		t.Fatal(err)
	}
	mine := comments.withMarker(marker)
	if len(mine) != 1 {
		t.Fatalf("%d comments carry the marker, want 1: %v", len(mine), mine)
	}
	if want := marker + "\n## kudod preview\nsecond"; mine[0].Body != want {
		t.Errorf("comment body %q, want %q", mine[0].Body, want)
	}
	var methods []string
	for _, r := range rec.all() {
		methods = append(methods, r.Method+" "+r.Query)
	}
	// The token's account once; two pages each time (150 comments, then 151); a create, then
	// an edit of comment 151.
	want := []string{"GET ", "GET per_page=100", "GET per_page=100&page=2", "POST ", "GET per_page=100", "GET per_page=100&page=2", "PATCH "}
	if strings.Join(methods, ",") != strings.Join(want, ",") {
		t.Errorf("requests %q, want %q", methods, want)
	}
	if last := rec.all()[len(rec.all())-1]; last.Path != "/api/v3/repos/ops/platform/issues/comments/151" {
		t.Errorf("edited %s, want comment 151", last.Path)
	}
}

func TestUpsertCommentPassesOverCommentsItCannotEdit(t *testing.T) {
	var rec recorder
	comments := &fakeComments{}
	const marker = "<!-- kudod-preview:platform -->"
	planted := comments.add("quoting "+marker, otherID)
	srv := gitHubCommentServer(t, &rec, comments, map[int64]bool{planted: true})
	defer srv.Close()
	p, _ := testProvider(t, githubStatus(srv.URL, tokenFile(t, token)))

	for _, body := range []string{marker + "\none", marker + "\ntwo"} {
		if err := p.UpsertComment(ctxT(t), 7, marker, body); err != nil {
			t.Fatal(err)
		}
	}
	mine := comments.withMarker(marker)
	if len(mine) != 2 || mine[0].Body != "quoting "+marker || mine[1].Body != marker+"\ntwo" {
		t.Errorf("comments %v, want the planted one untouched and kudod's own updated", mine)
	}
}

func TestUpsertCommentRefusesOversizeBodies(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("unexpected request %s %s", r.Method, r.URL)
	}))
	defer srv.Close()
	p, _ := testProvider(t, githubStatus(srv.URL, tokenFile(t, token)))
	if p.MaxCommentLength() != 65536 {
		t.Errorf("GitHub MaxCommentLength %d, want 65536", p.MaxCommentLength())
	}
	const marker = "<!-- m -->"
	body := marker + strings.Repeat("x", p.MaxCommentLength()-len(marker)+1)
	if err := p.UpsertComment(ctxT(t), 7, marker, body); err == nil || !strings.Contains(err.Error(), "at most 65536") {
		t.Errorf("UpsertComment of %d characters: %v, want an error naming the limit", len(body), err)
	}
	if err := p.UpsertComment(ctxT(t), 7, " ", "body"); err == nil {
		t.Error("UpsertComment with a blank marker succeeded")
	}
}

func TestPaginationNeverLeavesTheAPIHost(t *testing.T) {
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the token went to another host: %s %s (Authorization %q)", r.Method, r.URL, r.Header.Get("Authorization"))
	}))
	defer elsewhere.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/api/v3/user" {
			fmt.Fprintf(w, `{"login":"kudod-bot","id":%d}`, botID)
			return
		}
		w.Header().Set("Link", `<`+elsewhere.URL+`/steal?page=2>; rel="next"`)
		fmt.Fprint(w, `[]`)
	}))
	defer srv.Close()
	p, _ := testProvider(t, githubStatus(srv.URL, tokenFile(t, token)))
	err := p.UpsertComment(ctxT(t), 7, "<!-- m -->", "body")
	if err == nil || !strings.Contains(err.Error(), "not on the forge's API host") {
		t.Errorf("UpsertComment following a foreign next link: %v, want an error", err)
	}
}
