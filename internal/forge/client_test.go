package forge

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// reply is one scripted answer of a test forge.
type reply struct {
	code   int
	header map[string]string
	body   string
}

// scripted serves its replies in order (the last one again when they run out) and records, per
// request, how many waits the client had made before sending it.
type scripted struct {
	t       *testing.T
	clock   *fakeClock
	mu      sync.Mutex
	replies []reply
	waits   []int
	auth    []string
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.waits)
	waits := 0
	if s.clock != nil {
		waits = len(s.clock.waits())
	}
	s.waits = append(s.waits, waits)
	s.auth = append(s.auth, r.Header.Get("Authorization"))
	rep := s.replies[min(n, len(s.replies)-1)]
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	w.WriteHeader(rep.code)
	fmt.Fprint(w, rep.body)
}

func (s *scripted) script(replies ...reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replies = replies
}

func (s *scripted) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waits)
}

// scriptedGitHub returns a GitHub provider whose forge answers with replies.
func scriptedGitHub(t *testing.T, replies ...reply) (Provider, *scripted, *fakeClock) {
	t.Helper()
	s := &scripted{t: t, replies: replies}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	p, clock := testProvider(t, githubStatus(srv.URL, tokenFile(t, token)))
	s.clock = clock
	return p, s, clock
}

var created = reply{code: http.StatusCreated, body: `{"id":1}`}

func status() Status {
	return Status{Repository: "platform", SHA: shaA, Context: "kudod/kafka/zk", State: StateSuccess, Description: "deploy plan COMPLETE"}
}

func TestRetriesServerErrorsWithJitteredBackoff(t *testing.T) {
	p, s, clock := scriptedGitHub(t,
		reply{code: http.StatusBadGateway, body: "bad gateway"},
		reply{code: http.StatusServiceUnavailable, body: "unavailable"},
		reply{code: http.StatusInternalServerError, body: `{"message":"oops"}`},
		created)
	if err := p.SetStatus(ctxT(t), status()); err != nil {
		t.Fatal(err)
	}
	if s.requests() != 4 {
		t.Errorf("%d requests, want 4", s.requests())
	}
	waits := clock.waits()
	if len(waits) != 3 {
		t.Fatalf("waits %v, want 3", waits)
	}
	// 500ms doubling, plus up to 50% jitter.
	for i, w := range waits {
		base := 500 * time.Millisecond << i
		if w < base || w > base+base/2 {
			t.Errorf("wait %d = %s, want within [%s, %s]", i, w, base, base+base/2)
		}
	}
}

func TestGivesUpAfterTheLastAttempt(t *testing.T) {
	p, s, clock := scriptedGitHub(t, reply{code: http.StatusServiceUnavailable, body: "down for maintenance"})
	err := p.SetStatus(ctxT(t), status())
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusServiceUnavailable || !strings.Contains(err.Error(), "down for maintenance") {
		t.Errorf("error %v, want the last 503 with its message", err)
	}
	if s.requests() != defaultRetry().attempts || len(clock.waits()) != defaultRetry().attempts-1 {
		t.Errorf("%d requests and waits %v, want %d requests", s.requests(), clock.waits(), defaultRetry().attempts)
	}
}

func TestDoesNotRetryClientErrors(t *testing.T) {
	for _, code := range []int{http.StatusBadRequest, http.StatusUnauthorized, http.StatusForbidden, http.StatusNotFound, http.StatusUnprocessableEntity, http.StatusNotImplemented} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			p, s, clock := scriptedGitHub(t, reply{code: code, body: `{"message":"Validation Failed"}`})
			err := p.SetStatus(ctxT(t), status())
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode != code {
				t.Errorf("error %v, want an APIError %d", err, code)
			}
			if s.requests() != 1 || len(clock.waits()) != 0 {
				t.Errorf("%d requests, waits %v; want one request, no wait", s.requests(), clock.waits())
			}
		})
	}
}

func TestRetriesNetworkErrors(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	url := srv.URL
	srv.Close() // connection refused from now on
	p, clock := testProvider(t, githubStatus(url, tokenFile(t, token)))
	err := p.SetStatus(ctxT(t), status())
	if err == nil || !strings.Contains(err.Error(), "connect") {
		t.Errorf("error %v, want connection refused", err)
	}
	if len(clock.waits()) != defaultRetry().attempts-1 {
		t.Errorf("waits %v, want %d", clock.waits(), defaultRetry().attempts-1)
	}
}

func TestHonoursRetryAfter(t *testing.T) {
	now := newFakeClock().Now()
	tests := []struct {
		name  string
		reply reply
		wait  time.Duration
	}{
		{"429 seconds", reply{code: http.StatusTooManyRequests, header: map[string]string{"Retry-After": "7"}}, 7 * time.Second},
		{"429 HTTP date", reply{code: http.StatusTooManyRequests, header: map[string]string{"Retry-After": now.Add(90 * time.Second).UTC().Format(http.TimeFormat)}}, 90 * time.Second},
		{"503 seconds", reply{code: http.StatusServiceUnavailable, header: map[string]string{"Retry-After": "12"}}, 12 * time.Second},
		{"GitHub secondary limit", reply{code: http.StatusForbidden, header: map[string]string{"Retry-After": "60"}, body: `{"message":"You have exceeded a secondary rate limit."}`}, 60 * time.Second},
		{"GitHub primary limit 403", reply{code: http.StatusForbidden, header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(now.Add(42*time.Second).Unix(), 10)}, body: `{"message":"API rate limit exceeded"}`}, 42 * time.Second},
		{"GitHub primary limit 429", reply{code: http.StatusTooManyRequests, header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(now.Add(5*time.Second).Unix(), 10)}}, 5 * time.Second},
		{"GitLab limit", reply{code: http.StatusTooManyRequests, header: map[string]string{"RateLimit-Remaining": "0", "RateLimit-Reset": strconv.FormatInt(now.Add(20*time.Second).Unix(), 10)}}, 20 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, s, clock := scriptedGitHub(t, tt.reply, created)
			if err := p.SetStatus(ctxT(t), status()); err != nil {
				t.Fatal(err)
			}
			if waits := clock.waits(); len(waits) != 1 || waits[0] != tt.wait {
				t.Errorf("waits %v, want [%s]", waits, tt.wait)
			}
			if s.requests() != 2 {
				t.Errorf("%d requests, want 2", s.requests())
			}
		})
	}
}

func TestWaitsForAnExhaustedRateLimitBeforeTheNextCall(t *testing.T) {
	p, s, clock := scriptedGitHub(t, created)
	reset := clock.Now().Add(30 * time.Second).Unix()
	s.script(
		reply{code: http.StatusCreated, body: `{}`, header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": strconv.FormatInt(reset, 10)}},
		created,
	)
	for range 2 {
		if err := p.SetStatus(ctxT(t), status()); err != nil {
			t.Fatal(err)
		}
	}
	// The second request went out only after waiting for the reset.
	if waits := clock.waits(); len(waits) != 1 || waits[0] != 30*time.Second || s.waits[1] != 1 {
		t.Errorf("waits %v, waits before each request %v; want 30s before the second", waits, s.waits)
	}
}

func TestGivesUpOnRateLimitsBeyondTheBound(t *testing.T) {
	p, s, clock := scriptedGitHub(t, created)
	reset := strconv.FormatInt(clock.Now().Add(time.Hour).Unix(), 10)
	s.script(reply{code: http.StatusForbidden, header: map[string]string{"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset}, body: `{"message":"API rate limit exceeded"}`})
	err := p.SetStatus(ctxT(t), status())
	if err == nil || !strings.Contains(err.Error(), "rate limit exceeded") || !strings.Contains(err.Error(), "giving up") {
		t.Errorf("error %v, want the rate limit, given up", err)
	}
	// The next call does not even ask: the forge said when it would answer again.
	err = p.SetStatus(ctxT(t), status())
	if err == nil || !strings.Contains(err.Error(), "rate limited") {
		t.Errorf("second call: %v, want rate limited", err)
	}
	if s.requests() != 1 || len(clock.waits()) != 0 {
		t.Errorf("%d requests, waits %v; want 1 request and no wait", s.requests(), clock.waits())
	}
}

func TestTokenIsReadAtEachCall(t *testing.T) {
	s := &scripted{t: t, replies: []reply{created}}
	srv := httptest.NewServer(s)
	defer srv.Close()
	path := tokenFile(t, "first-token")
	p, _ := testProvider(t, githubStatus(srv.URL, path))
	if err := p.SetStatus(ctxT(t), status()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte("rotated-token\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.SetStatus(ctxT(t), status()); err != nil {
		t.Fatal(err)
	}
	if want := []string{"Bearer first-token", "Bearer rotated-token"}; strings.Join(s.auth, ",") != strings.Join(want, ",") {
		t.Errorf("Authorization %q, want %q", s.auth, want)
	}

	// From the environment too.
	t.Setenv("KUDOD_TEST_FORGE_TOKEN", "env-token")
	p, _ = testProvider(t, Repository{Kind: Gitea, URL: srv.URL, TokenEnv: "KUDOD_TEST_FORGE_TOKEN", Owner: "o", Repo: "r"})
	if err := p.SetStatus(ctxT(t), status()); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KUDOD_TEST_FORGE_TOKEN", "")
	if err := p.SetStatus(ctxT(t), status()); err == nil || !strings.Contains(err.Error(), "KUDOD_TEST_FORGE_TOKEN is unset or empty") {
		t.Errorf("SetStatus without a token: %v, want an error naming the variable", err)
	}
	if got := s.auth[2:]; len(got) != 1 || got[0] != "token env-token" {
		t.Errorf("Gitea Authorization %q, want [token env-token] and no request without a token", got)
	}
}

func TestTokenNeverInErrors(t *testing.T) {
	// A forge that echoes the token back in its error.
	p, _, _ := scriptedGitHub(t, reply{code: http.StatusUnauthorized, body: `{"message":"Bad credentials: Bearer ` + token + `"}`})
	err := p.SetStatus(ctxT(t), status())
	if err == nil || strings.Contains(err.Error(), token) || !strings.Contains(err.Error(), "Bad credentials") {
		t.Errorf("error %q: want the forge's message without the token", err)
	}
	// An unreadable token file names the file only.
	dir := t.TempDir()
	p, _ = testProvider(t, githubStatus("http://127.0.0.1:1", dir+"/missing"))
	if err := p.SetStatus(ctxT(t), status()); err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("error %v, want the missing file", err)
	}
}

func TestNewProviderRefusesIncompleteSettings(t *testing.T) {
	tok := tokenFile(t, token)
	for _, s := range []Repository{
		{Kind: "bitbucket", URL: "https://x", TokenFile: tok, Owner: "o", Repo: "r"},
		{Kind: GitHub, URL: "https://github.com", TokenFile: tok, Owner: "o"},
		{Kind: Gitea, URL: "https://git.example.com", TokenFile: tok, Repo: "r"},
		{Kind: GitLab, URL: "https://gitlab.com", TokenFile: tok},
		{Kind: GitLab, URL: "https://gitlab.com", Project: "a/b"},
		{Kind: GitLab, URL: "https://gitlab.com", Project: "a/b", TokenFile: tok, TokenEnv: "X"},
		{Kind: Gitea, URL: "ftp://git.example.com", TokenFile: tok, Owner: "o", Repo: "r"},
		{Kind: Gitea, URL: "https://user:pw@git.example.com", TokenFile: tok, Owner: "o", Repo: "r"},
	} {
		if _, err := NewProvider(s, Options{}); err == nil {
			t.Errorf("NewProvider(%+v) succeeded, want an error", s)
		}
	}
}

func TestNextPage(t *testing.T) {
	for link, want := range map[string]string{
		`<https://api.github.com/x?page=2>; rel="next", <https://api.github.com/x?page=5>; rel="last"`: "https://api.github.com/x?page=2",
		`<https://g/x?page=1>; rel="prev", <https://g/x?page=3>; rel=next`:                             "https://g/x?page=3",
		`<https://g/x?page=1>; rel="first"`:                                                            "",
		``:                                                                                             "",
	} {
		h := http.Header{}
		if link != "" {
			h.Set("Link", link)
		}
		if got := nextPage(h); got != want {
			t.Errorf("nextPage(%q) = %q, want %q", link, got, want)
		}
	}
}
