package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// TestLeaderElectionHandsOverAndResumes: two daemons with leader election against one API
// server: only the leader applies; SIGKILL it in the middle of a plan and the other takes over
// within the lease duration and resumes the plan where it was.
func TestLeaderElectionHandsOverAndResumes(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	leaseNS := ns + "-kudod"
	repo := testenv.NewGitRepo(t)
	files := slowPackage(4)
	files["instances/slow.yaml"] = instanceFile(ns, "slow", "slow", "", "")
	rev := repo.Commit("slow", files)
	cfg := daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, "")
	ha := []string{"--leader-elect=true", "--leader-election-namespace=" + leaseNS,
		"--leader-election-lease-duration=4s", "--leader-election-renew-deadline=3s", "--leader-election-retry-period=500ms"}
	a := startKudod(t, cfg, ha...)
	eventually(t, 30*time.Second, "a to lead", func() (bool, string) { return leads(a), "" })
	b := startSecondKudod(t, cfg, ha...)

	w := &stepWatcher{t: t, c: c, ns: ns, name: "slow"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.watch(ctx)
	eventually(t, 2*time.Minute, "step2 to be in progress", func() (bool, string) {
		return w.stepStatus(2) == v1alpha1.StatusInProgress, string(w.stepStatus(2))
	})
	if leads(b) || strings.Contains(b.logs(), "applying desired state") || strings.Contains(b.logs(), "commit status") {
		t.Fatalf("the standby acted while a led:\n%s", tail(b.logs(), 20))
	}
	holder := leaseHolder(t, c, leaseNS)

	a.kill()
	killed := time.Now()
	eventually(t, 30*time.Second, "b to take over", func() (bool, string) { return leads(b), "" })
	handover := time.Since(killed)
	t.Logf("handover %s after SIGKILL (lease duration 4s)", handover.Round(time.Millisecond))
	// The lease expires 4s after the last renewal, and the standby retries every 500ms; the
	// rest is slack for a loaded machine.
	if handover > 4*time.Second+4*time.Second {
		t.Errorf("handover took %s, more than the lease duration allows", handover)
	}
	if h := leaseHolder(t, c, leaseNS); h == holder {
		t.Errorf("the lease still names the dead leader %s", h)
	}
	waitPlan(t, c, ns, "slow", "deploy", v1alpha1.StatusComplete, rev, 2*time.Minute)
	cancel()
	if err := w.err(); err != nil {
		t.Fatal(err)
	}
	if uids := w.uids(); len(uids) != 1 {
		t.Fatalf("the plan restarted instead of resuming: UIDs %v", uids)
	}
}

func leads(k *kudod) bool {
	return strings.Contains(strings.ToLower(k.logs()), "successfully acquired lease")
}

func leaseHolder(t *testing.T, c *testenv.Cluster, ns string) string {
	t.Helper()
	l := &coordinationv1.Lease{}
	if err := c.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: "kudod-leader"}, l); err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// startSecondKudod runs another daemon process with the same configuration.
func startSecondKudod(t *testing.T, config string, args ...string) *kudod {
	t.Helper()
	// startKudod registers the test's daemon for fail-fast checks; keep the first one there.
	first, _ := daemons.Load(t)
	k := startKudod(t, config, args...)
	if first != nil {
		daemons.Store(t, first)
	}
	return k
}

// scrape reads a daemon's Prometheus metrics.
func scrape(t testing.TB, addr string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics: %s", resp.Status)
	}
	return string(body)
}

// hasSeries reports whether metrics text holds a series of name with all the labels.
func hasSeries(metrics, name string, labels map[string]string) bool {
	for _, line := range strings.Split(metrics, "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for k, v := range labels {
			if !strings.Contains(line, fmt.Sprintf("%s=%q", k, v)) {
				ok = false
			}
		}
		if ok {
			return true
		}
	}
	return false
}
