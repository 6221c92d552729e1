package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

func withStepTimeout(doc, timeout string) string {
	return strings.Replace(doc, "spec:\n", "spec:\n  stepTimeout: "+timeout+"\n", 1)
}

// TestStepTimeoutFailsAndTheNextCommitRecovers: a step whose Deployment never becomes ready
// fails at its timeout with FATAL_ERROR naming the Deployment; fixing it in git recovers.
func TestStepTimeoutFailsAndTheNextCommitRecovers(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	repo := testenv.NewGitRepo(t)
	repo.AddOperator("web", "1.0.0")
	bad := repo.Commit("unschedulable", map[string]string{"instances/web.yaml": withStepTimeout(instanceFile(ns, "web", "web", "", "    ZONE: nowhere\n"), "4s")})
	startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))

	in := waitPlan(t, c, ns, "web", "deploy", v1alpha1.StatusFatalError, bad, 2*time.Minute)
	msg := in.Status.LastPlan.Message
	if !strings.Contains(msg, "timed out after 4s") || !strings.Contains(msg, "Deployment/"+ns+"/web") {
		t.Fatalf("the failure does not say what it waited for: %q", msg)
	}
	ps := planStatus(in, "deploy")
	if ps.Phases[0].Steps[0].Status != v1alpha1.StatusComplete || ps.Phases[0].Steps[1].Status != v1alpha1.StatusFatalError {
		t.Fatalf("status tree does not show where it stopped: %+v", ps.Phases[0].Steps)
	}
	cond := meta(in, v1alpha1.ConditionReady)
	if cond == nil || cond.Status != "False" {
		t.Errorf("Ready condition after the failure: %+v", cond)
	}

	good := repo.Commit("fix", map[string]string{"instances/web.yaml": withStepTimeout(instanceFile(ns, "web", "web", "", ""), "1m")})
	waitPlan(t, c, ns, "web", "deploy", v1alpha1.StatusComplete, good, 2*time.Minute)
	dep := &appsv1.Deployment{}
	if !exists(t, c, dep, ns, "web") || dep.Status.AvailableReplicas != 1 {
		t.Fatalf("the fixed Deployment is not available: %+v", dep.Status)
	}
}

// TestNewerCommitTakesOverAWaitingPlan: quorum's not-allowed plan (a Dummy task that never
// completes, triggered by DISK_SIZE) is taken over at once by a newer commit and recorded as
// superseded.
func TestNewerCommitTakesOverAWaitingPlan(t *testing.T) {
	newerCommitTakesOver(t, "quorum", func(r *testenv.GitRepo) { r.AddOperator("quorum", "1.37.0-0.2.0") })
}

// TestCatalogNewerCommitTakesOverAWaitingPlan does the same with zookeeper's not-allowed plan.
func TestCatalogNewerCommitTakesOverAWaitingPlan(t *testing.T) {
	newerCommitTakesOver(t, "zookeeper", func(r *testenv.GitRepo) { r.AddCatalogOperator("zookeeper", "3.6.2-0.3.3") })
}

// newerCommitTakesOver deploys operator, which add writes: a StatefulSet with volume claims of
// DISK_SIZE, which triggers a not-allowed plan that never completes.
func newerCommitTakesOver(t *testing.T, operator string, add func(*testenv.GitRepo)) {
	repo := testenv.NewGitRepo(t)
	add(repo)
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	first := repo.Commit("zk", map[string]string{"instances/zk.yaml": instanceFile(ns, "zk", operator, "", "    NODE_COUNT: 1\n")})
	startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))
	waitPlan(t, c, ns, "zk", "deploy", v1alpha1.StatusComplete, first, 3*time.Minute)

	stuck := repo.Commit("resize", map[string]string{"instances/zk.yaml": instanceFile(ns, "zk", operator, "", "    NODE_COUNT: 1\n    DISK_SIZE: 10Gi\n")})
	waitPlan(t, c, ns, "zk", "not-allowed", v1alpha1.StatusInProgress, stuck, time.Minute)
	start := time.Now()
	next := repo.Commit("more memory", map[string]string{"instances/zk.yaml": instanceFile(ns, "zk", operator, "", "    NODE_COUNT: 1\n    DISK_SIZE: 10Gi\n    MEMORY: 512Mi\n")})
	// The deploy that takes over cannot complete: DISK_SIZE changes the StatefulSet's volume
	// claim template, which Kubernetes forbids (why the package has a not-allowed plan). It fails
	// at once instead of retrying forever as KUDO did (KUDO #1764).
	in := waitPlan(t, c, ns, "zk", "deploy", v1alpha1.StatusFatalError, next, 2*time.Minute)
	t.Logf("takeover and the deploy's end in %s", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(in.Status.LastPlan.Message, "field is immutable") {
		t.Errorf("deploy failed for another reason: %s", in.Status.LastPlan.Message)
	}
	na := planStatus(in, "not-allowed")
	if na == nil || na.Status != v1alpha1.StatusFatalError || na.Message != "superseded by "+next[:7] {
		t.Fatalf("not-allowed is not recorded as superseded: %+v", na)
	}
}

// TestStepWithAnInvalidObjectWritesNothing: the second object of a step fails the server-side
// dry-run (an invalid port), so the step writes neither object and fails naming the Service.
func TestStepWithAnInvalidObjectWritesNothing(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	repo := testenv.NewGitRepo(t)
	repo.AddOperator("web", "1.0.0")
	first := repo.Commit("web", map[string]string{"instances/web.yaml": instanceFile(ns, "web", "web", "", "")})
	startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))
	waitPlan(t, c, ns, "web", "deploy", v1alpha1.StatusComplete, first, 2*time.Minute)

	bad := repo.Commit("bad port", map[string]string{"instances/web.yaml": instanceFile(ns, "web", "web", "", "    PORT: \"700000\"\n")})
	in := waitPlan(t, c, ns, "web", "broken", v1alpha1.StatusFatalError, bad, time.Minute)
	if !strings.Contains(in.Status.LastPlan.Message, "Service/"+ns+"/web") {
		t.Fatalf("the failure does not name the Service: %q", in.Status.LastPlan.Message)
	}
	if exists(t, c, &corev1.ConfigMap{}, ns, "web-config2") || exists(t, c, &corev1.Service{}, ns, "web") {
		t.Fatal("a step with an invalid object wrote part of itself")
	}
	_ = context.Background()
}

func meta(in *v1alpha1.Instance, condition string) *struct{ Status, Reason, Message string } {
	for _, c := range in.Status.Conditions {
		if c.Type == condition {
			return &struct{ Status, Reason, Message string }{string(c.Status), c.Reason, c.Message}
		}
	}
	return nil
}
