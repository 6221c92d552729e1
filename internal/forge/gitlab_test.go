package forge

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
)

// checkGitLabHeaders checks GitLab's documented authentication: the PRIVATE-TOKEN header.
func checkGitLabHeaders(t *testing.T, r request) {
	t.Helper()
	if got := r.Header.Get("Private-Token"); got != token {
		t.Errorf("%s %s: PRIVATE-TOKEN %q, want the token", r.Method, r.Path, got)
	}
	if got := r.Header.Get("Authorization"); got != "" {
		t.Errorf("%s %s: unexpected Authorization header", r.Method, r.Path)
	}
	if r.Body != nil && r.Header.Get("Content-Type") != "application/json" {
		t.Errorf("%s %s: Content-Type %q, want application/json", r.Method, r.Path, r.Header.Get("Content-Type"))
	}
}

func TestGitLabSetStatusRequest(t *testing.T) {
	tests := []struct {
		state State
		want  string
	}{
		{StatePending, "running"},
		{StateSuccess, "success"},
		{StateFailure, "failed"},
		{StateError, "canceled"},
	}
	for _, tt := range tests {
		t.Run(string(tt.state), func(t *testing.T) {
			var rec recorder
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				rec.add(t, r)
				w.WriteHeader(http.StatusCreated)
				fmt.Fprint(w, `{"id":93,"status":"success"}`)
			}))
			defer srv.Close()
			// A self-managed GitLab under a path prefix.
			p, _ := testProvider(t, gitlabStatus(srv.URL+"/gitlab", tokenFile(t, token)))
			s := Status{Repository: "platform", SHA: shaB, Context: "kudod/kafka/zk", State: tt.state, Description: "deploy plan"}
			if err := p.SetStatus(ctxT(t), s); err != nil {
				t.Fatal(err)
			}
			reqs := rec.all()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			// :id is the URL-encoded project path.
			if want := "/gitlab/api/v4/projects/infra%2Fteam%2Fplatform/statuses/" + shaB; r.Method != http.MethodPost || r.RawPath != want {
				t.Errorf("request %s %s, want POST %s", r.Method, r.RawPath, want)
			}
			checkGitLabHeaders(t, r)
			exactly(t, "post the build status to a commit", r.Body, map[string]string{"state": tt.want, "name": "kudod/kafka/zk", "description": "deploy plan"})
		})
	}
}

func TestGitLabSameStateTwiceIsNotAnError(t *testing.T) {
	var invalid atomic.Bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		if invalid.Load() {
			fmt.Fprint(w, `{"message":"state is invalid"}`)
			return
		}
		fmt.Fprint(w, `{"message":"Cannot transition status via :run from :running (Reason(s): Status cannot transition via \"run\".)"}`)
	}))
	defer srv.Close()
	p, _ := testProvider(t, gitlabStatus(srv.URL, tokenFile(t, token)))
	if err := p.SetStatus(ctxT(t), Status{SHA: shaB, Context: "kudod/a/b", State: StatePending, Description: "x"}); err != nil {
		t.Errorf("SetStatus on a status already running: %v, want nil", err)
	}
	// Any other 400 is an error.
	invalid.Store(true)
	if err := p.SetStatus(ctxT(t), Status{SHA: shaB, Context: "kudod/a/b", State: StatePending, Description: "x"}); err == nil || !strings.Contains(err.Error(), "state is invalid") {
		t.Errorf("SetStatus answered 400 state is invalid: %v, want that error", err)
	}
}

func TestGitLabUpsertNote(t *testing.T) {
	var rec recorder
	notes := &fakeComments{}
	notes.add("LGTM", otherID)
	const prefix = "/api/v4/projects/infra%2Fteam%2Fplatform/merge_requests/12/notes"
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := rec.add(t, r)
		checkGitLabHeaders(t, req)
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.Method == http.MethodGet && req.RawPath == "/api/v4/user":
			fmt.Fprintf(w, `{"id":%d,"username":"kudod-bot"}`, botID)
		case r.Method == http.MethodGet && req.RawPath == prefix:
			q := r.URL.Query()
			if q.Get("per_page") != "100" || q.Get("sort") != "asc" {
				t.Errorf("listing notes with %s, want per_page=100 and sort=asc", r.URL.RawQuery)
			}
			page, _ := strconv.Atoi(q.Get("page"))
			page = max(page, 1)
			items, more := notes.page(page, 1) // one note a page: pagination is exercised
			if more {
				w.Header().Set("Link", fmt.Sprintf(`<%s%s?page=%d&per_page=100&sort=asc>; rel="next"`, srv.URL, prefix, page+1))
				w.Header().Set("X-Next-Page", strconv.Itoa(page+1))
			}
			_ = json.NewEncoder(w).Encode(gitLabNotes(items))
		case r.Method == http.MethodPost && req.RawPath == prefix:
			exactly(t, "create new merge request note", req.Body, map[string]string{"body": req.Body["body"].(string)})
			w.WriteHeader(http.StatusCreated)
			fmt.Fprintf(w, `{"id":%d}`, notes.add(req.Body["body"].(string), botID))
		case r.Method == http.MethodPut && strings.HasPrefix(req.RawPath, prefix+"/"):
			id, _ := strconv.ParseInt(strings.TrimPrefix(req.RawPath, prefix+"/"), 10, 64)
			exactly(t, "modify existing merge request note", req.Body, map[string]string{"body": req.Body["body"].(string)})
			if !notes.set(id, req.Body["body"].(string)) {
				w.WriteHeader(http.StatusNotFound)
				return
			}
			fmt.Fprintf(w, `{"id":%d}`, id)
		default:
			t.Errorf("unexpected request %s %s", r.Method, req.RawPath)
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	defer srv.Close()
	p, _ := testProvider(t, gitlabStatus(srv.URL, tokenFile(t, token)))
	if p.MaxCommentLength() != 1000000 {
		t.Errorf("GitLab MaxCommentLength %d, want 1000000", p.MaxCommentLength())
	}
	const marker = "<!-- kudod-preview:platform -->"
	for _, body := range []string{"first " + marker, "second " + marker, "third " + marker} {
		if err := p.UpsertComment(ctxT(t), 12, marker, body); err != nil {
			t.Fatal(err)
		}
	}
	mine := notes.withMarker(marker)
	if len(mine) != 1 || mine[0].Body != "third "+marker || mine[0].ID != 2 {
		t.Errorf("notes with the marker %v, want note 2 reading %q", mine, "third "+marker)
	}
	var puts int
	for _, r := range rec.all() {
		if r.Method == http.MethodPut {
			puts++
		}
	}
	if puts != 2 {
		t.Errorf("%d PUTs, want 2 (one create, then two edits)", puts)
	}
}
