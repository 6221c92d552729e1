package forge

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

const (
	shaA  = "0123456789abcdef0123456789abcdef01234567"
	shaB  = "89abcdef0123456789abcdef0123456789abcdef"
	token = "tok-3f9a1c0e7d"
)

// fakeClock records the retries' waits and moves its time on by them, instead of sleeping.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps = append(c.sleeps, d)
	c.now = c.now.Add(d)
	return ctx.Err()
}

func (c *fakeClock) waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.sleeps...)
}

// request is what a test forge received.
type request struct {
	Method, Path, RawPath, Query string
	Header                       http.Header
	Body                         map[string]any
}

// recorder keeps the requests of a test forge; the answer function decides each reply.
type recorder struct {
	mu       sync.Mutex
	requests []request
}

func (r *recorder) add(t *testing.T, req *http.Request) request {
	t.Helper()
	data, err := io.ReadAll(req.Body)
	if err != nil {
		t.Errorf("reading a request body: %v", err)
	}
	rec := request{Method: req.Method, Path: req.URL.Path, RawPath: req.URL.EscapedPath(), Query: req.URL.RawQuery, Header: req.Header.Clone()}
	if len(data) > 0 {
		if err := json.Unmarshal(data, &rec.Body); err != nil {
			t.Errorf("%s %s: body is not a JSON object: %v: %s", req.Method, req.URL, err, data)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.requests = append(r.requests, rec)
	return rec
}

func (r *recorder) all() []request {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]request(nil), r.requests...)
}

// tokenFile writes a throwaway token into a new file.
func tokenFile(t *testing.T, value string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(path, []byte(value+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// testProvider builds a provider of the given kind against url with a fake clock.
func testProvider(t *testing.T, s Repository) (Provider, *fakeClock) {
	t.Helper()
	p, err := NewProvider(s, Options{})
	if err != nil {
		t.Fatalf("NewProvider(%+v): %v", s, err)
	}
	clock := newFakeClock()
	switch p := p.(type) {
	case *gitHub:
		p.c.clock = clock
	case *gitLab:
		p.c.clock = clock
	case *gitea:
		p.c.clock = clock
	}
	return p, clock
}

func githubStatus(url, tokenPath string) Repository {
	return Repository{Kind: GitHub, URL: url, TokenFile: tokenPath, Owner: "ops", Repo: "platform"}
}

func gitlabStatus(url, tokenPath string) Repository {
	return Repository{Kind: GitLab, URL: url, TokenFile: tokenPath, Project: "infra/team/platform"}
}

func ctxT(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// exactly compares a decoded JSON body with the fields it must have, and nothing more.
func exactly(t *testing.T, what string, got map[string]any, want map[string]string) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: body %v, want exactly %v", what, got, want)
		return
	}
	for k, v := range want {
		if s, ok := got[k].(string); !ok || s != v {
			t.Errorf("%s: body field %s = %#v, want %q (body %v)", what, k, got[k], v, got)
		}
	}
}
