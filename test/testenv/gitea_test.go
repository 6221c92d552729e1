package testenv_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kudod-dev/kudod/test/testenv"
)

// tree writes files (path → content) into a new directory.
func tree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// gitShow runs `git show REV:PATH` in a fresh clone of url made with the given password.
func gitShow(t *testing.T, url, user, password, rev, path string) (string, error) {
	t.Helper()
	home := t.TempDir()
	clone := filepath.Join(home, "clone")
	run := func(dir string, args ...string) (string, error) {
		cmd := exec.Command("git", append([]string{"-c", `credential.helper=!f() { echo "username=$U"; echo "password=$P"; }; f`}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "HOME="+home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0", "U="+user, "P="+password)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := run(home, "clone", "-q", url, clone); err != nil {
		return out, err
	}
	return run(clone, "show", rev+":"+path)
}

func TestGiteaServesPushesStatusesAndPullRequests(t *testing.T) {
	g := testenv.Gitea(t)
	repo := g.CreateRepo(t, "platform")

	first := repo.Push(t, tree(t, map[string]string{"instances/zk.yaml": "v1\n", "README": "hi\n"}), "main", "first")
	second := repo.Push(t, tree(t, map[string]string{"instances/zk.yaml": "v2\n"}), "main", "second")
	feature := repo.Push(t, tree(t, map[string]string{"instances/zk.yaml": "v3\n"}), "feature", "change zk")

	// A token works as the password of git over HTTP: that is how kudod clones (auth.tokenFile).
	token := g.CreateToken(t, "kudod", "read:repository")
	out, err := gitShow(t, repo.CloneURL(), g.User, token, "main", "instances/zk.yaml")
	if err != nil || out != "v2\n" {
		t.Fatalf("git show main:instances/zk.yaml with the token: %v: %q, want v2", err, out)
	}
	// Each push is the whole tree: README, absent from the second push, is gone.
	if out, err := gitShow(t, repo.CloneURL(), g.User, g.Password, "main", "README"); err == nil {
		t.Errorf("README still on main after a push without it: %q", out)
	}
	if out, err := gitShow(t, repo.CloneURL(), g.User, g.Password, second+"~1", "README"); err != nil || out != "hi\n" || second == first {
		t.Errorf("the second commit does not follow the first (%s, %s): %v %q", first, second, err, out)
	}

	repo.SetStatus(t, second, testenv.CommitStatus{State: "pending", Context: "kudod/ns/zk", Description: "plan deploy running"})
	repo.SetStatus(t, second, testenv.CommitStatus{State: "success", Context: "kudod/ns/zk", Description: "plan deploy complete"})
	got := repo.CombinedStatus(t, second)
	if got.State != "success" || len(got.Statuses) != 1 || got.Statuses[0].State != "success" ||
		got.Statuses[0].Context != "kudod/ns/zk" || got.Statuses[0].Description != "plan deploy complete" {
		t.Errorf("combined status %+v, want the latest: success for kudod/ns/zk", got)
	}

	pr := repo.OpenPullRequest(t, "feature", "main", "change zk")
	refs := repo.Refs(t)
	if refs["refs/pull/"+strconv.Itoa(pr)+"/head"] != feature || refs["refs/heads/main"] != second {
		t.Errorf("refs %v, want refs/pull/%d/head at %s and main at %s", refs, pr, feature, second)
	}
	if c := repo.Comments(t, pr); len(c) != 0 {
		t.Errorf("a new pull request has comments: %v", c)
	}
}

func TestGiteaDeliversSignedWebhooksToLoopback(t *testing.T) {
	g := testenv.Gitea(t)
	repo := g.CreateRepo(t, "hooks")
	const secret = "test-secret"

	type delivery struct {
		event, signature string
		body             []byte
	}
	deliveries := make(chan delivery, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		deliveries <- delivery{r.Header.Get("X-Gitea-Event"), r.Header.Get("X-Gitea-Signature"), body}
	}))
	defer receiver.Close()

	repo.CreateWebhook(t, receiver.URL+"/hooks/platform", secret, "push")
	sha := repo.Push(t, tree(t, map[string]string{"a": "b"}), "main", "trigger")

	select {
	case d := <-deliveries:
		mac := hmac.New(sha256.New, []byte(secret))
		mac.Write(d.body)
		if want := hex.EncodeToString(mac.Sum(nil)); d.event != "push" || d.signature != want {
			t.Errorf("delivery of event %q signed %q, want push signed %q", d.event, d.signature, want)
		}
		var push struct {
			After string `json:"after"`
		}
		if err := json.Unmarshal(d.body, &push); err != nil || push.After != sha {
			t.Errorf("push payload after=%q (%v), want %s", push.After, err, sha)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no webhook delivery within 30s")
	}
}

func TestGiteaRejectsBadCredentials(t *testing.T) {
	g := testenv.Gitea(t)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, g.URL+"/api/v1/user", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(g.User, strings.Repeat("x", 20))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET /api/v1/user with a wrong password: %s, want 401", resp.Status)
	}
}
