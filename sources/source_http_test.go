package sources

import (
	"context"
	"crypto/rand"
	"errors"
	"net"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/kudod-dev/kudod/test/testenv"
)

const gitHTTPBackend = "/usr/lib/git-core/git-http-backend"

// gitHTTPServer serves repositories under root with git's own http-backend behind basic auth,
// counting the requests of each kind so tests can see what a poll costs on the wire.
type gitHTTPServer struct {
	*httptest.Server
	users map[string]string // user → password

	infoRefs    atomic.Int64 // GET …/info/refs: ls-remote, or the start of a fetch
	uploadPacks atomic.Int64 // POST …/git-upload-pack: a fetch
}

func newGitHTTPServer(t testing.TB, root string, users map[string]string) *gitHTTPServer {
	t.Helper()
	if _, err := os.Stat(gitHTTPBackend); err != nil {
		t.Skipf("%s is missing (hack/test-deps.sh installs git): %v", gitHTTPBackend, err)
	}
	s := &gitHTTPServer{users: users}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, password, ok := r.BasicAuth()
		if want, known := s.users[user]; !ok || !known || password != want {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		switch {
		case strings.HasSuffix(r.URL.Path, "/info/refs"):
			s.infoRefs.Add(1)
		case strings.HasSuffix(r.URL.Path, "/git-upload-pack"):
			s.uploadPacks.Add(1)
		}
		backend := &cgi.Handler{
			Path:   gitHTTPBackend,
			Env:    []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1", "REMOTE_USER=" + user},
			Stderr: testLog{t},
		}
		backend.ServeHTTP(w, r)
	}))
	t.Cleanup(s.Close)
	return s
}

// testLog sends a process's diagnostics to the test's log.
type testLog struct{ t testing.TB }

func (l testLog) Write(p []byte) (int, error) {
	l.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// secretFile writes a throwaway secret into a file of its own.
func secretFile(t testing.TB, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func randomSecret(t testing.TB) string {
	t.Helper()
	return rand.Text()
}

// TestHTTPBasicAuth clones over HTTP with a username and password read from files, and checks
// that a poll of an unchanged remote is a single GET of info/refs.
func TestHTTPBasicAuth(t *testing.T) {
	remote := testenv.NewGitRepo(t)
	c1 := remote.Commit("one", map[string]string{"a.yaml": "a: 1\n"})
	password := randomSecret(t)
	srv := newGitHTTPServer(t, filepath.Dir(remote.Dir), map[string]string{"kudod": password})
	s := newSource(t, Options{
		URL:  srv.URL + "/app/.git",
		Auth: Auth{UsernameFile: secretFile(t, "kudod\n"), PasswordFile: secretFile(t, password+"\n")},
	})

	snap, _ := poll(t, s)
	if snap.Commit != c1 || readFile(t, snap, "a.yaml") != "a: 1\n" {
		t.Fatalf("poll = %s, want %s", snap.Commit, c1)
	}
	refsBefore, packsBefore := srv.infoRefs.Load(), srv.uploadPacks.Load()
	for range 3 {
		if snap, changed := poll(t, s); snap.Commit != c1 || changed {
			t.Fatalf("poll of unchanged remote = %s changed=%v", snap.Commit, changed)
		}
	}
	if refs, packs := srv.infoRefs.Load()-refsBefore, srv.uploadPacks.Load()-packsBefore; refs != 3 || packs != 0 {
		t.Errorf("3 polls of an unchanged remote made %d info/refs and %d upload-pack requests, want 3 and 0", refs, packs)
	}
	wantStats(t, s, 4, 1, 0)

	c2 := remote.Commit("two", map[string]string{"a.yaml": "a: 2\n"})
	if snap, changed := poll(t, s); snap.Commit != c2 || !changed || readFile(t, snap, "a.yaml") != "a: 2\n" {
		t.Fatalf("poll after a commit = %s changed=%v, want %s", snap.Commit, changed, c2)
	}
}

// TestHTTPToken sends a token as the basic-auth password of user "git".
func TestHTTPToken(t *testing.T) {
	remote := testenv.NewGitRepo(t)
	c1 := remote.Commit("one", map[string]string{"a.yaml": "a: 1\n"})
	token := randomSecret(t)
	srv := newGitHTTPServer(t, filepath.Dir(remote.Dir), map[string]string{"git": token})
	s := newSource(t, Options{URL: srv.URL + "/app/.git", Auth: Auth{TokenFile: secretFile(t, token)}})
	if snap, _ := poll(t, s); snap.Commit != c1 {
		t.Fatalf("poll = %s, want %s", snap.Commit, c1)
	}
}

// TestHTTPAuthFailures: wrong or missing credentials are ErrAuthentication, the message names
// the repository and never shows the secret, and a corrected secret file is picked up by the
// next poll without a new Source.
func TestHTTPAuthFailures(t *testing.T) {
	remote := testenv.NewGitRepo(t)
	c1 := remote.Commit("one", map[string]string{"a.yaml": "a: 1\n"})
	password := randomSecret(t)
	srv := newGitHTTPServer(t, filepath.Dir(remote.Dir), map[string]string{"kudod": password})
	url := srv.URL + "/app/.git"

	wrong := "wrong-" + randomSecret(t)
	passwordFile := secretFile(t, wrong)
	for _, tc := range []struct {
		name string
		auth Auth
	}{
		{"wrong password", Auth{UsernameFile: secretFile(t, "kudod"), PasswordFile: passwordFile}},
		{"wrong token", Auth{TokenFile: secretFile(t, wrong)}},
		{"no credentials", Auth{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSource(t, Options{URL: url, Auth: tc.auth})
			snap, _, err := s.Poll(context.Background())
			if !errors.Is(err, ErrAuthentication) || !snap.IsZero() {
				t.Fatalf("Poll = %+v, %v; want zero snapshot and ErrAuthentication", snap, err)
			}
			if want := `repository "app" (` + url + `): listing remote refs: authentication failed`; !strings.HasPrefix(err.Error(), want) {
				t.Errorf("error = %q, want prefix %q", err, want)
			}
			if strings.Contains(err.Error(), wrong) || strings.Contains(err.Error(), password) {
				t.Errorf("error shows a secret: %v", err)
			}
		})
	}

	t.Run("rotated secret", func(t *testing.T) {
		s := newSource(t, Options{URL: url, Auth: Auth{UsernameFile: secretFile(t, "kudod"), PasswordFile: passwordFile}})
		if _, _, err := s.Poll(context.Background()); !errors.Is(err, ErrAuthentication) {
			t.Fatalf("Poll with the old secret: %v, want ErrAuthentication", err)
		}
		if err := os.WriteFile(passwordFile, []byte(password), 0o600); err != nil {
			t.Fatal(err)
		}
		if snap, _ := poll(t, s); snap.Commit != c1 {
			t.Fatalf("poll after rotating the secret = %s, want %s", snap.Commit, c1)
		}
	})

	t.Run("missing secret file", func(t *testing.T) {
		s := newSource(t, Options{URL: url, Auth: Auth{TokenFile: filepath.Join(t.TempDir(), "absent")}})
		if _, _, err := s.Poll(context.Background()); !errors.Is(err, ErrCredentials) || !strings.Contains(err.Error(), "reading tokenFile") {
			t.Fatalf("Poll: %v, want ErrCredentials naming tokenFile", err)
		}
	})
}

// TestHTTPUnreachableAndNotFound: a closed port is ErrUnreachable, a missing repository
// ErrRepositoryNotFound.
func TestHTTPUnreachableAndNotFound(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/app.git"
	_ = l.Close()

	srv := newGitHTTPServer(t, t.TempDir(), map[string]string{"git": "t"})
	for _, tc := range []struct {
		url  string
		want error
	}{
		{closed, ErrUnreachable},
		{srv.URL + "/nothing.git", ErrRepositoryNotFound},
	} {
		s := newSource(t, Options{URL: tc.url, Auth: Auth{TokenFile: secretFile(t, "t")}})
		_, _, err := s.Poll(context.Background())
		if !errors.Is(err, tc.want) || !strings.Contains(err.Error(), tc.url) {
			t.Errorf("Poll(%s) = %v, want %v naming the URL", tc.url, err, tc.want)
		}
	}
}
