package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// TestDrillGiteaDown: Gitea — git and API — is out of kudod's reach for a minute while two
// plans end: one completes, one fails at its step timeout. Their statuses wait in kudod's
// queue and are delivered once Gitea is back, in the order kudod reported them, the newest of
// each commit and context winning; none is dropped.
//
// Gitea is shared by the package's tests, so kudod reaches it through a proxy that the drill
// takes down: for kudod, Gitea refuses connections as if it had stopped.
func TestDrillGiteaDown(t *testing.T) {
	t.Parallel()
	drillTime(t)
	c := testenv.SimulatedCluster(t)
	s := newGiteaSetup(t, c)
	proxy := testenv.NewProxy(t, strings.TrimPrefix(s.gitea.URL, "http://"))
	files := slowPackage(4)
	for name, content := range testenv.FixtureOperatorFiles(t, "web", "1.0.0") {
		files[name] = content
	}
	files["instances/a.yaml"] = instanceFile(s.ns, "a", "slow", "", "")
	files["instances/b.yaml"] = withStepTimeout(instanceFile(s.ns, "b", "web", "", "    ZONE: nowhere\n"), "15s")
	rev := s.push(t, "two instances", files)
	metrics := freeAddr(t)
	k := startKudod(t, s.configVia(t, "http://"+proxy.Addr, c.Kubeconfig, "    interval: 1s\n"), "--metrics-bind-address="+metrics)
	eventually(t, 2*time.Minute, "both plans to start", func() (bool, string) {
		for _, name := range []string{"a", "b"} {
			if in := getInstance(c, s.ns, name); in == nil || in.Spec.Source.Revision != rev {
				return false, name + " not applied yet"
			}
		}
		return true, ""
	})

	proxy.Down()
	down := time.Now()
	waitPlan(t, c, s.ns, "a", "deploy", v1alpha1.StatusComplete, rev, outage)
	waitPlan(t, c, s.ns, "b", "deploy", v1alpha1.StatusFatalError, rev, time.Until(down.Add(outage)))
	shown := map[string]string{}
	for _, st := range s.repo.CombinedStatus(t, rev).Statuses {
		shown[st.Context] = st.State
	}
	if shown["kudod/"+s.ns+"/a"] == "success" || shown["kudod/"+s.ns+"/b"] == "failure" {
		t.Fatalf("final statuses reached Gitea through a proxy that was down: %v", shown)
	}
	time.Sleep(time.Until(down.Add(outage)))
	proxy.Up(t)
	up := time.Now()
	t.Logf("Gitea down for %s", up.Sub(down).Round(time.Second))
	s.waitStatus(t, rev, "kudod/"+s.ns+"/a", "success", "deploy plan COMPLETE", time.Minute)
	s.waitStatus(t, rev, "kudod/"+s.ns+"/b", "failure", "timed out", time.Minute)
	t.Logf("statuses delivered %s after Gitea came back", time.Since(up).Round(100*time.Millisecond))

	// In order, the newest winning: what Gitea holds, oldest first, is what kudod reported, in
	// the order reported, less statuses a newer one of the same context replaced; the last of
	// each context is the last reported.
	reported := reportedStatuses(k.logs(), rev)
	var posted []string
	for _, st := range s.repo.Statuses(t, rev) {
		posted = append(posted, st.Context+" "+st.State+" "+st.Description)
	}
	t.Logf("reported:\n%s\nGitea holds:\n%s", strings.Join(reported, "\n"), strings.Join(posted, "\n"))
	if !isSubsequence(posted, reported) {
		t.Errorf("Gitea holds statuses out of the order kudod reported them")
	}
	for _, name := range []string{"a", "b"} {
		ctx := "kudod/" + s.ns + "/" + name + " "
		if last(posted, ctx) != last(reported, ctx) {
			t.Errorf("%s: Gitea's last status %q, kudod's last %q", name, last(posted, ctx), last(reported, ctx))
		}
	}
	if testing.Verbose() {
		t.Logf("kudod's status log:\n%s", grepLines(k.logs(), "commit status"))
	}
	m := scrape(t, metrics)
	if hasSeries(m, "kudod_commit_status_dropped_total", map[string]string{"repository": repoName(t)}) &&
		!strings.Contains(m, fmt.Sprintf("kudod_commit_status_dropped_total{repository=%q} 0", repoName(t))) {
		t.Errorf("statuses were dropped:\n%s", grepLines(m, "kudod_commit_status_"))
	}
}

// configVia writes kudod.yaml for the Gitea repository as config does, with Gitea (git and
// API) reached at base instead.
func (s *giteaSetup) configVia(t testing.TB, base, kubeconfig, extra string) string {
	t.Helper()
	token := filepath.Join(t.TempDir(), "gitea-token")
	if err := os.WriteFile(token, []byte(s.gitea.CreateToken(t, repoName(t), "write:repository", "write:issue", "read:user")+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	clone := base + strings.TrimPrefix(s.repo.CloneURL(), s.gitea.URL)
	return writeFile(t, fmt.Sprintf(`repositories:
  - name: %s
    url: %s
    branch: main
    auth: {tokenFile: %s}
    status: {provider: gitea, url: %s, tokenFile: %s}
%scluster:
  kubeconfig: %s
`, repoName(t), clone, token, base, token, extra, kubeconfig))
}

var statusLog = regexp.MustCompile(`msg="commit status" .*commit=(\S+) context=(\S+) state=(\S+) description=("(?:[^"\\]|\\.)*"|\S*)`)

// reportedStatuses reads the statuses kudod reported for a commit from its log, in order, as
// "context state description".
func reportedStatuses(logs, sha string) []string {
	var out []string
	for _, line := range strings.Split(logs, "\n") {
		m := statusLog.FindStringSubmatch(line)
		if m == nil || m[1] != sha {
			continue
		}
		desc := m[4]
		if u, err := strconv.Unquote(desc); err == nil {
			desc = u
		}
		out = append(out, m[2]+" "+m[3]+" "+desc)
	}
	return out
}

// isSubsequence reports whether sub's items appear in seq in the same order.
func isSubsequence(sub, seq []string) bool {
	i := 0
	for _, s := range seq {
		if i < len(sub) && sub[i] == s {
			i++
		}
	}
	return i == len(sub)
}

// last returns the last item starting with prefix.
func last(items []string, prefix string) string {
	for i := len(items) - 1; i >= 0; i-- {
		if strings.HasPrefix(items[i], prefix) {
			return items[i]
		}
	}
	return ""
}

func grepLines(text, substr string) string {
	var out []string
	for _, line := range strings.Split(text, "\n") {
		if strings.Contains(line, substr) {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}
