package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/http/cgi"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// gitServer serves a bare copy of a repository over HTTP on a fixed port, so it can be
// stopped and started again at the same URL.
type gitServer struct {
	t    *testing.T
	addr string
	root string
	srv  *http.Server
}

func newGitServer(t *testing.T, repo *testenv.GitRepo) *gitServer {
	t.Helper()
	root := t.TempDir()
	bare := filepath.Join(root, "repo.git")
	if out, err := exec.Command("git", "clone", "-q", "--bare", repo.Dir, bare).CombinedOutput(); err != nil {
		t.Fatalf("git clone --bare: %v: %s", err, out)
	}
	repo.Git("remote", "add", "served", bare)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &gitServer{t: t, addr: l.Addr().String(), root: root}
	s.serve(l)
	t.Cleanup(s.stop)
	return s
}

func (s *gitServer) url() string { return "http://" + s.addr + "/repo.git" }

func (s *gitServer) serve(l net.Listener) {
	s.srv = &http.Server{Handler: &cgi.Handler{
		Path: "/usr/lib/git-core/git-http-backend",
		Env:  []string{"GIT_PROJECT_ROOT=" + s.root, "GIT_HTTP_EXPORT_ALL=1"},
	}, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(l) }()
}

func (s *gitServer) stop() {
	if s.srv != nil {
		_ = s.srv.Close()
		s.srv = nil
	}
}

func (s *gitServer) start() {
	s.t.Helper()
	l, err := net.Listen("tcp", s.addr)
	if err != nil {
		s.t.Fatal(err)
	}
	s.serve(l)
}

// sourceStatus runs `kudod status --sources -o json` and returns the repository's record.
func sourceStatus(t *testing.T, c *testenv.Cluster, repository string) map[string]any {
	t.Helper()
	out, errOut, code := runCLI(t, "status", "--sources", "-o", "json", "--kubeconfig", c.Kubeconfig)
	if code != 0 {
		t.Fatalf("kudod status --sources: exit %d: %s", code, errOut)
	}
	var doc struct {
		Sources []map[string]any `json:"sources"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("kudod status --sources -o json: %v: %s", err, out)
	}
	for _, s := range doc.Sources {
		if s["repository"] == repository {
			return s
		}
	}
	return nil
}

// TestBadCommitsAndAnUnreachableServerChangeNothing: a commit whose package is broken and a
// git server that stops answering leave the cluster exactly as it was (nothing applied,
// nothing pruned); the daemon keeps running and says why, in its status and on the Instance;
// once the server is back, the source status shows the revision again.
func TestBadCommitsAndAnUnreachableServerChangeNothing(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	repo := testenv.NewGitRepo(t)
	files := prunerPackage("kept.yaml, dropped.yaml", map[string]string{"kept.yaml": cmTemplate("kept"), "dropped.yaml": cmTemplate("dropped")})
	files["instances/p.yaml"] = instanceFile(ns, "p", "pruner", "", "")
	good := repo.Commit("good", files)
	srv := newGitServer(t, repo)
	push(repo)
	k := startKudod(t, daemonConfig(t, c.Kubeconfig, srv.url(), ""))
	before := waitPlan(t, c, ns, "p", "deploy", v1alpha1.StatusComplete, good, 2*time.Minute)

	// A commit that drops a template but breaks the package: nothing is applied or pruned.
	broken := prunerPackage("kept.yaml", map[string]string{"kept.yaml": "{{ .Params.NOPE }}", "dropped.yaml": ""})
	bad := repo.Commit("broken package", broken)
	push(repo)
	eventually(t, time.Minute, "the source to reach the broken commit", func() (bool, string) {
		s := sourceStatus(t, c, repoName(t))
		return s != nil && s["revision"] == bad, describe(s)
	})
	eventually(t, 30*time.Second, "a ChangeRejected event naming the template", func() (bool, string) {
		return hasEvent(t, c, ns, "p", "ChangeRejected", "templates/kept.yaml"), "no event yet"
	})
	after := getInstance(c, ns, "p")
	if after.Generation != before.Generation || after.Spec.Source.Revision != good {
		t.Fatalf("a broken commit changed the instance: generation %d → %d, revision %.7s", before.Generation, after.Generation, after.Spec.Source.Revision)
	}
	for _, name := range []string{"p-kept", "p-dropped"} {
		if !exists(t, c, &corev1.ConfigMap{}, ns, name) {
			t.Fatalf("%s was deleted by a broken commit", name)
		}
	}

	// The git server stops answering: the poll fails, the daemon says why and keeps running.
	srv.stop()
	eventually(t, time.Minute, "the source status to show the fetch error", func() (bool, string) {
		s := sourceStatus(t, c, repoName(t))
		e, _ := s["lastError"].(string)
		return strings.Contains(e, "connection refused") || strings.Contains(e, "unreachable"), describe(s)
	})
	if !k.running() {
		t.Fatal("kudod stopped when the git server did")
	}
	if !exists(t, c, &corev1.ConfigMap{}, ns, "p-dropped") || getInstance(c, ns, "p") == nil {
		t.Fatal("an unreachable git server pruned something")
	}

	// Back again, with a fixed commit: the error clears and the plan runs.
	fixed := repo.Commit("fixed", prunerPackage("kept.yaml", map[string]string{"kept.yaml": cmTemplate("kept")}))
	push(repo)
	srv.start()
	eventually(t, time.Minute, "the source status to show the new revision without an error", func() (bool, string) {
		s := sourceStatus(t, c, repoName(t))
		return s != nil && s["revision"] == fixed && s["lastError"] == nil, describe(s)
	})
	waitPlan(t, c, ns, "p", "deploy", v1alpha1.StatusComplete, fixed, time.Minute)
	eventually(t, 30*time.Second, "the dropped ConfigMap to be pruned", func() (bool, string) {
		return !exists(t, c, &corev1.ConfigMap{}, ns, "p-dropped"), "still there"
	})
}

func describe(s map[string]any) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// hasEvent reports whether an events.k8s.io Event about an Instance has the reason and a note
// containing text.
func hasEvent(t *testing.T, c *testenv.Cluster, ns, name, reason, text string) bool {
	t.Helper()
	out, err := c.Kubectl(context.Background(), "get", "events.events.k8s.io", "-n", ns, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Items []struct {
			Reason    string `json:"reason"`
			Note      string `json:"note"`
			Regarding struct {
				Name string `json:"name"`
			} `json:"regarding"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.Regarding.Name == name && e.Reason == reason && strings.Contains(e.Note, text) {
			return true
		}
	}
	return false
}
