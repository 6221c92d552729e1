package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// TestRollbackReturnsToThePreviousParameters: a commit raises ledger's DISK_SIZE, which a
// StatefulSet cannot change (as zookeeper's in KUDO #1764): its update plan fails. `kudod
// rollback` returns the instance to the previous parameters with a COMPLETE plan, the failed
// commit's status says it was rolled back, `kudod status` shows the instance out of sync, and
// neither the next poll nor a restarted daemon runs the bad commit again. A later commit
// that fixes the value runs as usual. With spec.onFailure: rollback, the next bad commit is
// rolled back by itself.
func TestRollbackReturnsToThePreviousParameters(t *testing.T) {
	ctx := context.Background()
	c := testenv.SimulatedCluster(t)
	s := newGiteaSetup(t, c)
	files := testenv.FixtureOperatorFiles(t, "ledger", "1.0.0")
	lg := func(params string) map[string]string {
		return map[string]string{"instances/lg.yaml": instanceFile(s.ns, "lg", "ledger", "", params)}
	}
	for k, v := range lg("    DISK_SIZE: 1Gi\n") {
		files[k] = v
	}
	good := s.push(t, "ledger", files)
	k := startKudod(t, s.config(t, c.Kubeconfig, "    interval: 1s\n"))
	context_ := "kudod/" + s.ns + "/lg"
	waitPlan(t, c, s.ns, "lg", "deploy", v1alpha1.StatusComplete, good, 3*time.Minute)
	s.waitStatus(t, good, context_, "success", "deploy plan COMPLETE", time.Minute)

	bad := s.push(t, "a bigger disk", lg("    DISK_SIZE: 2Gi\n"))
	waitPlan(t, c, s.ns, "lg", "update", v1alpha1.StatusFatalError, bad, 2*time.Minute)
	s.waitStatus(t, bad, context_, "failure", "update FATAL_ERROR in step app", time.Minute)

	out, errOut, code := runCLI(t, "rollback", "lg", "-n", s.ns, "--kubeconfig", c.Kubeconfig)
	if code != 0 {
		t.Fatalf("kudod rollback: exit %d: %s%s", code, out, errOut)
	}
	var in *v1alpha1.Instance
	eventually(t, 2*time.Minute, "the rollback plan to complete", func() (bool, string) {
		in = getInstance(c, s.ns, "lg")
		lp := in.Status.LastPlan
		return lp.Trigger == v1alpha1.TriggerRollback && lp.Status == v1alpha1.StatusComplete, string(lp.Trigger) + " " + lp.Name + " " + string(lp.Status) + " " + lp.Message
	})
	if in.Status.LastPlan.Name != "update" || in.Spec.Parameters["DISK_SIZE"] != "1Gi" || in.Spec.Source.Revision != good {
		t.Fatalf("after the rollback: plan %s, DISK_SIZE %q, revision %.7s", in.Status.LastPlan.Name, in.Spec.Parameters["DISK_SIZE"], in.Spec.Source.Revision)
	}
	if m := in.Status.RolledBack; m == nil || m.Revision != bad || m.To != good {
		t.Fatalf("status.rolledBack: %+v", in.Status.RolledBack)
	}
	sts := &appsv1.StatefulSet{}
	if err := c.Client.Get(ctx, types.NamespacedName{Namespace: s.ns, Name: "lg-ledger"}, sts); err != nil {
		t.Fatal(err)
	}
	if got := sts.Spec.VolumeClaimTemplates[0].Spec.Resources.Requests.Storage().String(); got != "1Gi" {
		t.Fatalf("the StatefulSet asks for %s", got)
	}
	s.waitStatus(t, bad, context_, "failure", "rolled back to "+good[:7], time.Minute)
	out, _, _ = runCLI(t, "status", "lg", "-n", s.ns, "--kubeconfig", c.Kubeconfig)
	if !strings.Contains(out, "OUT OF SYNC") {
		t.Errorf("kudod status does not show the instance out of sync:\n%s", out)
	}

	// Neither the next poll nor a restarted daemon (which plans the commit afresh) runs it.
	rolledBack := in.Status.LastPlan.UID
	if _, errOut, code := runCLI(t, "reconcile", repoName(t), "--kubeconfig", c.Kubeconfig); code != 0 {
		t.Fatalf("kudod reconcile: %s", errOut)
	}
	k.stop()
	k.start()
	consistently(t, 8*time.Second, "the commit rolled back to stay rolled back", func() (bool, string) {
		in := getInstance(c, s.ns, "lg")
		return in.Status.LastPlan.UID == rolledBack && in.Spec.Source.Revision == good && in.Status.ActivePlan == nil,
			in.Status.LastPlan.Name + " " + string(in.Status.LastPlan.Trigger) + " at " + in.Spec.Source.Revision
	})

	// A commit that fixes the value (and changes another) runs as usual.
	fixed := s.push(t, "back to 1Gi, a new value", lg("    DISK_SIZE: 1Gi\n    VALUE: v2\n"))
	in = waitPlan(t, c, s.ns, "lg", "update", v1alpha1.StatusComplete, fixed, 2*time.Minute)
	if in.Status.LastPlan.Trigger != v1alpha1.TriggerGit || in.Status.RolledBack != nil {
		t.Fatalf("the fixing commit: trigger %s, rolledBack %+v", in.Status.LastPlan.Trigger, in.Status.RolledBack)
	}
	s.waitStatus(t, fixed, context_, "success", "update plan COMPLETE", time.Minute)

	// spec.onFailure: rollback does it without anyone asking.
	auto := s.push(t, "an even bigger disk, rolled back on failure", map[string]string{"instances/lg.yaml": strings.Replace(
		instanceFile(s.ns, "lg", "ledger", "", "    DISK_SIZE: 3Gi\n    VALUE: v2\n"), "spec:\n", "spec:\n  onFailure: rollback\n", 1)})
	eventually(t, 2*time.Minute, "the automatic rollback to complete", func() (bool, string) {
		in = getInstance(c, s.ns, "lg")
		lp := in.Status.LastPlan
		return lp.Trigger == v1alpha1.TriggerRollback && lp.Status == v1alpha1.StatusComplete && in.Status.RolledBack != nil && in.Status.RolledBack.Revision == auto,
			string(lp.Trigger) + " " + lp.Name + " " + string(lp.Status) + " " + lp.Message
	})
	if in.Spec.Source.Revision != fixed || in.Spec.Parameters["DISK_SIZE"] != "1Gi" {
		t.Fatalf("after the automatic rollback: revision %.7s, DISK_SIZE %q", in.Spec.Source.Revision, in.Spec.Parameters["DISK_SIZE"])
	}
	s.waitStatus(t, auto, context_, "failure", "rolled back to "+fixed[:7], time.Minute)
	var kinds []string
	for _, e := range in.Status.History {
		kinds = append(kinds, string(e.Trigger)+" "+string(e.Outcome))
	}
	if want := "git completed,git failed,rollback completed,git completed,git failed,rollback completed"; strings.Join(kinds, ",") != want {
		t.Errorf("history %v, want %s", kinds, want)
	}
}
