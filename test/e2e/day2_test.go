package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// TestDriftIsCorrectedOrReported: every drift interval kudod compares live objects with what
// its plans applied: a hand edit to replicas is reverted and a hand-deleted ConfigMap
// re-created (with an event), a field another manager owns is left alone, and with
// driftCorrection: false the edit stays and the Drifted condition says so.
func TestDriftIsCorrectedOrReported(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	repo := testenv.NewGitRepo(t)
	repo.AddOperator("web", "1.0.0")
	rev := repo.Commit("two webs", map[string]string{
		"instances/web.yaml":     strings.Replace(instanceFile(ns, "web", "web", "", ""), "spec:\n", "spec:\n  driftInterval: 2s\n", 1),
		"instances/watched.yaml": strings.Replace(instanceFile(ns, "watched", "web", "", ""), "spec:\n", "spec:\n  driftInterval: 2s\n  driftCorrection: false\n", 1),
	})
	startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))
	waitPlan(t, c, ns, "web", "deploy", v1alpha1.StatusComplete, rev, 2*time.Minute)
	waitPlan(t, c, ns, "watched", "deploy", v1alpha1.StatusComplete, rev, 2*time.Minute)
	ctx := context.Background()

	scale := func(name string, replicas int) {
		t.Helper()
		dep := &appsv1.Deployment{}
		dep.Namespace, dep.Name = ns, name
		patch := []byte(fmt.Sprintf(`{"spec":{"replicas":%d},"metadata":{"labels":{"owner-team":"payments"}}}`, replicas))
		if err := c.Client.Patch(ctx, dep, client.RawPatch(types.MergePatchType, patch), client.FieldOwner("hand-edit")); err != nil {
			t.Fatal(err)
		}
	}
	replicas := func(name string) (int32, string) {
		dep := &appsv1.Deployment{}
		if err := c.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, dep); err != nil {
			t.Fatal(err)
		}
		return *dep.Spec.Replicas, dep.Labels["owner-team"]
	}

	scale("web", 4)
	if err := c.Client.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metaOf(ns, "web-config")}); err != nil {
		t.Fatal(err)
	}
	eventually(t, 30*time.Second, "the hand edit to be reverted and the ConfigMap re-created", func() (bool, string) {
		n, _ := replicas("web")
		return n == 1 && exists(t, c, &corev1.ConfigMap{}, ns, "web-config"), fmt.Sprintf("replicas %d", n)
	})
	if _, team := replicas("web"); team != "payments" {
		t.Errorf("a label another manager owns was removed: %q", team)
	}
	eventually(t, 10*time.Second, "a DriftCorrected event", func() (bool, string) {
		return hasEvent(t, c, ns, "web", "DriftCorrected", "Deployment/"+ns+"/web"), "no event"
	})
	if in := getInstance(c, ns, "web"); in.Status.LastPlan.Revision != rev || len(planStatus(in, "deploy").Phases) == 0 || in.Status.LastPlan.Name != "deploy" {
		t.Errorf("a plan ran for drift: %+v", in.Status.LastPlan)
	}

	scale("watched", 3)
	eventually(t, 30*time.Second, "the Drifted condition", func() (bool, string) {
		cond := meta(getInstance(c, ns, "watched"), v1alpha1.ConditionDrifted)
		return cond != nil && cond.Status == "True" && strings.Contains(cond.Message, "Deployment/"+ns+"/watched"), fmt.Sprint(cond)
	})
	consistently(t, 3*time.Second, "the edit to stay for more than one drift interval", func() (bool, string) {
		n, _ := replicas("watched")
		return n == 3, fmt.Sprintf("replicas %d", n)
	})
}

func metaOf(ns, name string) (m metav1ObjectMeta) { m.Namespace, m.Name = ns, name; return m }

// TestAbortAndReconcile: `kudod abort` ends a plan stuck in a Dummy step within seconds (the
// next commit starts fresh), and `kudod reconcile` makes the daemon poll now although its
// interval is an hour.
func TestAbortAndReconcile(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	// pauser's hold plan (FREEZE triggers it) waits forever in a Dummy step.
	repo := testenv.NewGitRepo(t)
	repo.AddOperator("pauser", "1.0.0")
	first := repo.Commit("pauser", map[string]string{"instances/p.yaml": instanceFile(ns, "p", "pauser", "", "")})
	cfg := daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, "")
	cfg = rewriteInterval(t, cfg, "1h")
	startKudod(t, cfg)
	waitPlan(t, c, ns, "p", "deploy", v1alpha1.StatusComplete, first, 2*time.Minute)

	// Nothing polls for an hour: kudod reconcile asks for it.
	held := repo.Commit("freeze", map[string]string{"instances/p.yaml": instanceFile(ns, "p", "pauser", "", "    FREEZE: \"yes\"\n")})
	if _, errOut, code := runCLI(t, "reconcile", repoName(t), "--kubeconfig", c.Kubeconfig); code != 0 {
		t.Fatalf("kudod reconcile: exit %d: %s", code, errOut)
	}
	waitPlan(t, c, ns, "p", "hold", v1alpha1.StatusInProgress, held, 30*time.Second)

	start := time.Now()
	out, errOut, code := runCLI(t, "abort", "p", "-n", ns, "--kubeconfig", c.Kubeconfig)
	if code != 0 {
		t.Fatalf("kudod abort: exit %d: %s", code, errOut)
	}
	in := waitPlan(t, c, ns, "p", "hold", v1alpha1.StatusFatalError, held, 10*time.Second)
	t.Logf("%s aborted in %s", strings.TrimSpace(out), time.Since(start).Round(time.Millisecond))
	if !strings.Contains(in.Status.LastPlan.Message, "aborted by ") || in.Status.ActivePlan != nil {
		t.Fatalf("aborted plan: %+v (active %+v)", in.Status.LastPlan, in.Status.ActivePlan)
	}

	// The next commit starts fresh.
	next := repo.Commit("value", map[string]string{"instances/p.yaml": instanceFile(ns, "p", "pauser", "", "    FREEZE: \"yes\"\n    VALUE: b\n")})
	if _, errOut, code := runCLI(t, "reconcile", repoName(t), "--kubeconfig", c.Kubeconfig); code != 0 {
		t.Fatalf("kudod reconcile: exit %d: %s", code, errOut)
	}
	waitPlan(t, c, ns, "p", "deploy", v1alpha1.StatusComplete, next, 30*time.Second)
}

// rewriteInterval changes the poll interval of a kudod.yaml written by daemonConfig.
func rewriteInterval(t *testing.T, path, interval string) string {
	t.Helper()
	data, err := readFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, strings.Replace(data, "interval: 1s", "interval: "+interval, 1))
}
