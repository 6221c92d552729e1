package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kudod-dev/kudod/test/testenv"
)

// giteaSetup is a repository on a real Gitea followed by a kudod that reports there.
type giteaSetup struct {
	gitea *testenv.GiteaServer
	repo  *testenv.GiteaRepo
	trees map[string]string // branch → the working tree pushed as its whole content
	ns    string
}

func newGiteaSetup(t testing.TB, c *testenv.Cluster) *giteaSetup {
	t.Helper()
	g := testenv.Gitea(t)
	s := &giteaSetup{gitea: g, repo: g.CreateRepo(t, repoName(t)), trees: map[string]string{"main": t.TempDir()}, ns: c.Namespace(t)}
	return s
}

// push writes files into main's tree (empty content removes a file) and pushes it.
func (s *giteaSetup) push(t testing.TB, msg string, files map[string]string) string {
	t.Helper()
	return s.pushTo(t, "main", msg, files)
}

// pushTo writes files into a branch's tree (a new branch starts from main's) and pushes it.
func (s *giteaSetup) pushTo(t testing.TB, branch, msg string, files map[string]string) string {
	t.Helper()
	tree, ok := s.trees[branch]
	if !ok {
		tree = t.TempDir()
		if out, err := exec.Command("cp", "-r", s.trees["main"]+"/.", tree).CombinedOutput(); err != nil {
			t.Fatalf("copy main's tree: %v: %s", err, out)
		}
		s.trees[branch] = tree
	}
	for name, content := range files {
		p := filepath.Join(tree, name)
		if content == "" {
			_ = os.Remove(p)
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return s.repo.Push(t, tree, branch, msg)
}

// config writes kudod.yaml for the Gitea repository: cloned with a Gitea access token,
// statuses posted to Gitea with it.
func (s *giteaSetup) config(t testing.TB, kubeconfig, extra string) string {
	t.Helper()
	token := filepath.Join(t.TempDir(), "gitea-token")
	if err := os.WriteFile(token, []byte(s.gitea.CreateToken(t, repoName(t), "write:repository", "write:issue", "read:user")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "kudod.yaml")
	cfg := fmt.Sprintf(`repositories:
  - name: %s
    url: %s
    branch: main
    auth: {tokenFile: %s}
    status: {provider: gitea, url: %s, tokenFile: %s}
%scluster:
  kubeconfig: %s
`, repoName(t), s.repo.CloneURL(), token, s.gitea.URL, token, extra, kubeconfig)
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// waitStatus waits until a commit's status for a context has a state and a description
// containing text.
func (s *giteaSetup) waitStatus(t testing.TB, sha, context, state, text string, timeout time.Duration) {
	t.Helper()
	eventually(t, timeout, fmt.Sprintf("status %s of %s on %.7s", state, context, sha), func() (bool, string) {
		for _, st := range s.repo.CombinedStatus(t, sha).Statuses {
			if st.Context == context {
				return st.State == state && strings.Contains(st.Description, text), st.State + ": " + st.Description
			}
		}
		return false, "no status yet"
	})
}

// TestGiteaCommitStatuses: kudod clones a Gitea repository with an access token and posts a
// status per instance on each commit: success when the plan completes, failure naming the
// unknown parameter of a breaking push, success again once fixed.
func TestGiteaCommitStatuses(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	s := newGiteaSetup(t, c)
	files := prunerPackage("kept.yaml", map[string]string{"kept.yaml": cmTemplate("kept")})
	files["instances/a.yaml"] = instanceFile(s.ns, "a", "pruner", "", "")
	files["instances/b.yaml"] = instanceFile(s.ns, "b", "pruner", "", "")
	first := s.push(t, "two instances", files)
	metricsAddr := freeAddr(t)
	startKudod(t, s.config(t, c.Kubeconfig, "    interval: 1s\n"), "--metrics-bind-address="+metricsAddr)
	for _, name := range []string{"a", "b"} {
		s.waitStatus(t, first, "kudod/"+s.ns+"/"+name, "success", "deploy plan COMPLETE", 2*time.Minute)
	}

	broken := s.push(t, "unknown parameter", map[string]string{"instances/b.yaml": instanceFile(s.ns, "b", "pruner", "", "    NOT_A_PARAMETER: 1\n")})
	s.waitStatus(t, broken, "kudod/"+s.ns+"/b", "failure", "NOT_A_PARAMETER", time.Minute)

	fixed := s.push(t, "fix", map[string]string{"instances/b.yaml": instanceFile(s.ns, "b", "pruner", "", ""), "instances/c.yaml": instanceFile(s.ns, "c", "pruner", "", "")})
	s.waitStatus(t, fixed, "kudod/"+s.ns+"/c", "success", "deploy plan COMPLETE", time.Minute)
	if got := s.repo.CombinedStatus(t, fixed); got.State != "success" {
		t.Fatalf("combined status of the fixing commit: %+v", got)
	}

	// The documented series, with their labels (docs/metrics.md).
	m := scrape(t, metricsAddr)
	repo := repoName(t)
	for _, want := range []struct {
		name   string
		labels map[string]string
	}{
		{"kudod_plan_runs_total", map[string]string{"plan": "deploy", "trigger": "git", "outcome": "complete"}},
		{"kudod_plan_duration_seconds_bucket", map[string]string{"plan": "deploy", "trigger": "git", "outcome": "complete"}},
		{"kudod_git_poll_duration_seconds_count", map[string]string{"repository": repo}},
		{"kudod_git_fetches_total", map[string]string{"repository": repo}},
		{"kudod_applied_revision_info", map[string]string{"repository": repo, "revision": fixed}},
		{"kudod_commit_status_posts_total", map[string]string{"repository": repo, "state": "success"}},
		{"kudod_commit_status_posts_total", map[string]string{"repository": repo, "state": "failure"}},
		{"kudod_commit_status_queue_depth", nil},
		{"kudod_executions_running", nil},
		{"controller_runtime_reconcile_total", map[string]string{"controller": "instance"}},
	} {
		if !hasSeries(m, want.name, want.labels) {
			t.Errorf("/metrics lacks %s%v", want.name, want.labels)
		}
	}
}

// TestGiteaWebhookTriggersAPoll: with a poll interval of an hour, a Gitea push webhook makes
// kudod poll at once.
func TestGiteaWebhookTriggersAPoll(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	s := newGiteaSetup(t, c)
	files := prunerPackage("kept.yaml", map[string]string{"kept.yaml": cmTemplate("kept")})
	files["instances/a.yaml"] = instanceFile(s.ns, "a", "pruner", "", "")
	first := s.push(t, "one instance", files)
	secret := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(secret, []byte("s3cr3t-for-this-test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	startKudod(t, s.config(t, c.Kubeconfig, "    interval: 1h\n    webhook: {secretFile: "+secret+"}\n"), "--webhook-bind-address="+addr)
	s.waitStatus(t, first, "kudod/"+s.ns+"/a", "success", "COMPLETE", 2*time.Minute) // the first poll, at start

	s.repo.CreateWebhook(t, "http://"+addr+"/hooks/"+repoName(t), "s3cr3t-for-this-test", "push")
	start := time.Now()
	second := s.push(t, "second instance", map[string]string{"instances/b.yaml": instanceFile(s.ns, "b", "pruner", "", "")})
	s.waitStatus(t, second, "kudod/"+s.ns+"/b", "success", "COMPLETE", time.Minute)
	t.Logf("push → success through the webhook: %s", time.Since(start).Round(time.Millisecond))
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// BenchmarkGiteaWebhookLatency measures push → success commit status through a Gitea webhook:
// one new instance per push, kudod polling only every hour.
func BenchmarkGiteaWebhookLatency(b *testing.B) {
	c := testenv.SimulatedCluster(b)
	s := newGiteaSetup(b, c)
	files := prunerPackage("kept.yaml", map[string]string{"kept.yaml": cmTemplate("kept")})
	files["instances/i0.yaml"] = instanceFile(s.ns, "i0", "pruner", "", "")
	first := s.push(b, "first", files)
	secret := filepath.Join(b.TempDir(), "webhook-secret")
	if err := os.WriteFile(secret, []byte("bench-secret\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	addr := freeAddr(b)
	startKudod(b, s.config(b, c.Kubeconfig, "    interval: 1h\n    webhook: {secretFile: "+secret+"}\n"), "--webhook-bind-address="+addr)
	s.waitStatus(b, first, "kudod/"+s.ns+"/i0", "success", "COMPLETE", 2*time.Minute)
	s.repo.CreateWebhook(b, "http://"+addr+"/hooks/"+repoName(b), "bench-secret", "push")
	b.ResetTimer()
	for i := 1; i <= b.N; i++ {
		name := fmt.Sprintf("i%d", i)
		sha := s.push(b, "add "+name, map[string]string{"instances/" + name + ".yaml": instanceFile(s.ns, name, "pruner", "", "")})
		s.waitStatus(b, sha, "kudod/"+s.ns+"/"+name, "success", "COMPLETE", time.Minute)
	}
}
