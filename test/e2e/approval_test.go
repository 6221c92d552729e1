package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// configValue reads the value an ordered instance's ConfigMap holds.
func configValue(t testing.TB, c *testenv.Cluster, ns, name string) string {
	t.Helper()
	cm := &corev1.ConfigMap{}
	if err := c.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name + "-config"}, cm); err != nil {
		return "<" + err.Error() + ">"
	}
	return cm.Data["value"]
}

// TestApprovalGate: an instance whose update needs approval. A parameter change waits
// PENDING, with a pending commit status "awaiting approval" on Gitea, for as long as nobody
// approves (30 s here) and writes nothing; `kudod approve` starts it. A newer commit replaces
// a plan that waits, and says so. `kudod reject` ends the next one FATAL_ERROR, "rejected by
// <who>", with nothing written.
func TestApprovalGate(t *testing.T) {
	t.Parallel()
	c := testenv.SimulatedCluster(t)
	s := newGiteaSetup(t, c)
	ns := s.ns
	ctx := "kudod/" + ns + "/gated"
	gated := func(value string) map[string]string {
		return map[string]string{"instances/gated.yaml": orderedFile(ns, "gated", value, "  approval: {plans: [update]}\n")}
	}
	files := testenv.FixtureOperatorFiles(t, "ordered", "1.0.0")
	for k, v := range gated("one") {
		files[k] = v
	}
	first := s.push(t, "gated", files)
	metricsAddr := freeAddr(t)
	startKudod(t, s.config(t, c.Kubeconfig, "    interval: 1s\n"), "--metrics-bind-address="+metricsAddr)
	// deploy is not among the plans that need approval.
	s.waitStatus(t, first, ctx, "success", "deploy plan COMPLETE", 2*time.Minute)

	second := s.push(t, "VALUE two", gated("two"))
	s.waitStatus(t, second, ctx, "pending", "update PENDING: awaiting approval", time.Minute)
	in := waitWaiting(t, c, ns, "gated", v1alpha1.WaitApproval, "awaiting approval", 10*time.Second)
	uid := in.Status.Waiting.UID
	if tree := in.Status.Plan("update"); tree == nil || tree.Status != v1alpha1.StatusPending || tree.Message != "awaiting approval" || tree.Revision != second {
		t.Errorf("update's tree while it waits: %+v", tree)
	}
	out, _, code := runCLI(t, "status", "gated", "-n", ns, "--kubeconfig", c.Kubeconfig)
	if code != 0 || !strings.Contains(out, "[PENDING] (awaiting approval)") || !strings.Contains(out, "Waiting: plan update of commit "+v1alpha1.ShortRevision(second)) {
		t.Errorf("kudod status (exit %d):\n%s", code, out)
	}
	stillWaiting(t, c, ns, "gated", uid, 30*time.Second)
	if v := configValue(t, c, ns, "gated"); v != "one" {
		t.Errorf("the ConfigMap changed before the approval: %q", v)
	}

	out, errOut, code := runCLI(t, "approve", "gated", "-n", ns, "--plan", "update", "--kubeconfig", c.Kubeconfig)
	if code != 0 || !strings.Contains(out, "Approved plan update of "+ns+"/gated for commit "+v1alpha1.ShortRevision(second)) {
		t.Fatalf("kudod approve: exit %d: %s%s", code, out, errOut)
	}
	s.waitStatus(t, second, ctx, "success", "update plan COMPLETE", time.Minute)
	in = waitPlan(t, c, ns, "gated", "update", v1alpha1.StatusComplete, second, 10*time.Second)
	if in.Status.Waiting != nil || in.Status.LastPlan.UID != uid || configValue(t, c, ns, "gated") != "two" {
		t.Errorf("after the approval: waiting %+v, last plan %+v, value %q", in.Status.Waiting, in.Status.LastPlan, configValue(t, c, ns, "gated"))
	}
	approver := strings.TrimSuffix(out[strings.LastIndex(out, " as ")+4:], ".\n")
	if tree := in.Status.Plan("update"); tree == nil || !strings.Contains(strings.Join(tree.Reasons, "; "), "approved by "+approver) {
		t.Errorf("the plan's reasons do not name the approver %q: %+v", approver, tree)
	}

	// A newer commit replaces a plan that waits; the approval of the older commit does not
	// carry over.
	third := s.push(t, "VALUE three", gated("three"))
	s.waitStatus(t, third, ctx, "pending", "awaiting approval", time.Minute)
	fourth := s.push(t, "VALUE four", gated("four"))
	s.waitStatus(t, third, ctx, "error", "superseded by "+v1alpha1.ShortRevision(fourth), time.Minute)
	s.waitStatus(t, fourth, ctx, "pending", "awaiting approval (replaces the waiting update of "+v1alpha1.ShortRevision(third)+")", time.Minute)

	// kudod reject ends it; nothing is written.
	out, errOut, code = runCLI(t, "reject", "gated", "-n", ns, "--kubeconfig", c.Kubeconfig)
	if code != 0 {
		t.Fatalf("kudod reject: exit %d: %s%s", code, out, errOut)
	}
	s.waitStatus(t, fourth, ctx, "failure", "update FATAL_ERROR: rejected by "+approver, time.Minute)
	in = waitPlan(t, c, ns, "gated", "update", v1alpha1.StatusFatalError, fourth, 10*time.Second)
	if in.Status.LastPlan.Message != "rejected by "+approver || in.Status.Waiting != nil {
		t.Errorf("after the rejection: %+v, waiting %+v", in.Status.LastPlan, in.Status.Waiting)
	}
	consistently(t, 3*time.Second, "nothing written after the rejection", func() (bool, string) {
		v := configValue(t, c, ns, "gated")
		return v == "two", v
	})
	if _, _, code := runCLI(t, "approve", "gated", "-n", ns, "--kubeconfig", c.Kubeconfig); code != 2 {
		t.Errorf("kudod approve with nothing waiting: exit %d, want 2", code)
	}

	m := scrape(t, metricsAddr)
	for _, want := range []struct {
		name   string
		labels map[string]string
	}{
		{"kudod_plan_wait_seconds_count", map[string]string{"reason": "approval"}},
		{"kudod_plan_runs_total", map[string]string{"plan": "update", "trigger": "git", "outcome": "rejected"}},
	} {
		if !hasSeries(m, want.name, want.labels) {
			t.Errorf("/metrics lacks %s%v", want.name, want.labels)
		}
	}
}
