package e2e

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// noJobsQuota is a ResourceQuota that leaves no room for a new Job in a namespace: the cluster
// refuses a step's Job until someone removes it.
func noJobsQuota(ns string) *corev1.ResourceQuota {
	return &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "no-jobs", Namespace: ns},
		Spec:       corev1.ResourceQuotaSpec{Hard: corev1.ResourceList{"count/jobs.batch": resource.MustParse("0")}},
	}
}

// configWrites counts the writes (not dry runs) the audit log recorded of a ConfigMap.
func configWrites(t testing.TB, c *testenv.Cluster, ns, name string) int {
	n := 0
	for _, e := range c.AuditEvents(t) {
		if e.ObjectRef == nil || e.ObjectRef.Resource != "configmaps" || e.ObjectRef.Namespace != ns || e.ObjectRef.Name != name || e.DryRun() {
			continue
		}
		switch e.Verb {
		case "create", "update", "patch":
			if e.Stage == "ResponseComplete" {
				n++
			}
		}
	}
	return n
}

// TestRetryContinuesFromTheFailedStep: ledger's update plan changes its ConfigMap (step
// config), then creates a migration Job (step app), which a ResourceQuota refuses: the plan
// fails in its second step. Once the quota is removed from the cluster (git is not touched),
// `kudod retry` completes the plan from that step: the ConfigMap is not written again. The
// history lists the failure and the retry; a second retry is refused.
func TestRetryContinuesFromTheFailedStep(t *testing.T) {
	ctx := context.Background()
	repo := testenv.NewGitRepo(t)
	repo.AddOperator("ledger", "1.0.0")
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	first := repo.Commit("ledger", map[string]string{"instances/lg.yaml": instanceFile(ns, "lg", "ledger", "", "    SCHEMA: \"1\"\n")})
	startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))
	waitPlan(t, c, ns, "lg", "deploy", v1alpha1.StatusComplete, first, 3*time.Minute)

	if err := c.Client.Create(ctx, noJobsQuota(ns)); err != nil {
		t.Fatal(err)
	}
	bad := repo.Commit("schema 2", map[string]string{"instances/lg.yaml": instanceFile(ns, "lg", "ledger", "", "    SCHEMA: \"2\"\n    VALUE: v2\n")})
	in := waitPlan(t, c, ns, "lg", "update", v1alpha1.StatusFatalError, bad, 2*time.Minute)
	tree := planStatus(in, "update")
	steps := tree.Phases[0].Steps
	if steps[0].Status != v1alpha1.StatusComplete || steps[1].Status != v1alpha1.StatusFatalError {
		t.Fatalf("update steps: %+v", steps)
	}
	configDone := steps[0].LastUpdated
	cm := &corev1.ConfigMap{}
	if err := c.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "lg-config"}, cm); err != nil || cm.Data["value"] != "v2" {
		t.Fatalf("the first step's ConfigMap: %v %v", err, cm.Data)
	}
	version, writes := cm.ResourceVersion, configWrites(t, c, ns, "lg-config")

	// The cause is fixed in the cluster, not in git.
	if err := c.Client.Delete(ctx, noJobsQuota(ns)); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := runCLI(t, "retry", "lg", "-n", ns, "--kubeconfig", c.Kubeconfig)
	if code != 0 || !strings.Contains(out, "from the step that failed") {
		t.Fatalf("kudod retry: exit %d: %s%s", code, out, errOut)
	}
	in = waitPlan(t, c, ns, "lg", "update", v1alpha1.StatusComplete, bad, 2*time.Minute)
	if in.Status.LastPlan.Trigger != v1alpha1.TriggerRetry {
		t.Fatalf("the plan completed with trigger %s", in.Status.LastPlan.Trigger)
	}
	if !exists(t, c, &batchv1.Job{}, ns, "lg-migrate-2") {
		t.Fatal("the retried step did not create its Job")
	}
	tree = planStatus(in, "update")
	if got := tree.Phases[0].Steps[0].LastUpdated; got == nil || !got.Equal(configDone) {
		t.Errorf("the completed step was run again: last updated %v, was %v", got, configDone)
	}
	if err := c.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "lg-config"}, cm); err != nil {
		t.Fatal(err)
	}
	if cm.ResourceVersion != version {
		t.Errorf("the first step's ConfigMap changed: resourceVersion %s, was %s", cm.ResourceVersion, version)
	}
	// The audit log is written as requests complete: give it a moment.
	time.Sleep(time.Second)
	if n := configWrites(t, c, ns, "lg-config"); n != writes {
		t.Errorf("the first step's ConfigMap was written %d more times by the retry", n-writes)
	}
	if in.Status.Applied == nil || in.Status.Applied.Revision != bad {
		t.Errorf("status.applied after the retry: %+v", in.Status.Applied)
	}

	// The history: deploy, the failed update, its retry.
	out, errOut, code = runCLI(t, "history", "lg", "-n", ns, "--kubeconfig", c.Kubeconfig, "-o", "json")
	if code != 0 {
		t.Fatalf("kudod history: exit %d: %s", code, errOut)
	}
	var h struct {
		History []v1alpha1.HistoryEntry `json:"history"`
	}
	if err := json.Unmarshal([]byte(out), &h); err != nil {
		t.Fatalf("kudod history -o json: %v\n%s", err, out)
	}
	var got []string
	for _, e := range h.History {
		got = append(got, e.Plan+" "+string(e.Trigger)+" "+string(e.Outcome))
	}
	if want := "deploy git completed,update git failed,update retry completed"; strings.Join(got, ",") != want {
		t.Fatalf("history %v, want %s", got, want)
	}
	if failed, retry := h.History[1], h.History[2]; retry.RetryOf != failed.UID || failed.FailedStep != "ledger/app" || retry.User == "" {
		t.Errorf("history entries: failed %+v, retry %+v", failed, retry)
	}
	out, _, _ = runCLI(t, "history", "lg", "-n", ns, "--kubeconfig", c.Kubeconfig)
	for _, want := range []string{"PLAN", "OUTCOME", "retry by", "failed", "step ledger/app"} {
		if !strings.Contains(out, want) {
			t.Errorf("kudod history lacks %q:\n%s", want, out)
		}
	}

	_, errOut, code = runCLI(t, "retry", "lg", "-n", ns, "--kubeconfig", c.Kubeconfig)
	if code != 2 || !strings.Contains(errOut, "did not fail") {
		t.Fatalf("a retry of a completed plan: exit %d: %s", code, errOut)
	}
}
