package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// TestWaitingPlansSurviveARestart: the daemon is killed (SIGKILL) while one plan awaits
// approval, one waits for it (a dependency) and one for a window. After the restart they still
// wait, with no second PlanWaiting event, and once released each runs exactly once.
func TestWaitingPlansSurviveARestart(t *testing.T) {
	t.Parallel()
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	repo := testenv.NewGitRepo(t)
	repo.AddOperator("ordered", "1.0.0")
	opens := nextMinute(45 * time.Second)
	rev := repo.Commit("three waiting plans", map[string]string{
		"instances/zk.yaml":    orderedFile(ns, "zk", "one", "  approval: {plans: [deploy]}\n"),
		"instances/kafka.yaml": orderedFile(ns, "kafka", "one", "  dependsOn: [{name: zk}]\n"),
		"instances/timed.yaml": orderedFile(ns, "timed", "one", windowAt(opens, 10*time.Minute, "allow")),
	})
	k := startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))
	uids := map[string]string{
		"zk":    waitWaiting(t, c, ns, "zk", v1alpha1.WaitApproval, "awaiting approval", time.Minute).Status.Waiting.UID,
		"kafka": waitWaiting(t, c, ns, "kafka", v1alpha1.WaitDependency, "waiting for "+ns+"/zk (deploy PENDING: awaiting approval)", time.Minute).Status.Waiting.UID,
		"timed": waitWaiting(t, c, ns, "timed", v1alpha1.WaitWindow, "waiting for window", time.Minute).Status.Waiting.UID,
	}
	time.Sleep(time.Second) // events reach the API server
	k.kill()
	k.start()
	for name, uid := range uids {
		stillWaiting(t, c, ns, name, uid, time.Second)
	}
	time.Sleep(2 * time.Second) // the restarted daemon has looked at each of them
	for name, uid := range uids {
		stillWaiting(t, c, ns, name, uid, time.Second)
		if n := countEvents(t, c, ns, name, "PlanWaiting"); n != 1 {
			t.Errorf("%s: %d PlanWaiting events, want 1: a wait is announced once, restarts included", name, n)
		}
	}

	if out, errOut, code := runCLI(t, "approve", "zk", "-n", ns, "--kubeconfig", c.Kubeconfig); code != 0 {
		t.Fatalf("kudod approve: exit %d: %s%s", code, out, errOut)
	}
	zk := waitPlan(t, c, ns, "zk", "deploy", v1alpha1.StatusComplete, rev, time.Minute)
	kafka := waitPlan(t, c, ns, "kafka", "deploy", v1alpha1.StatusComplete, rev, time.Minute)
	if kafka.Status.LastPlan.StartTime.Before(zk.Status.LastPlan.FinishTime) {
		t.Errorf("kafka started (%s) before zk completed (%s)", kafka.Status.LastPlan.StartTime, zk.Status.LastPlan.FinishTime)
	}
	timed := waitPlan(t, c, ns, "timed", "deploy", v1alpha1.StatusComplete, rev, time.Until(opens)+15*time.Second)
	startedWithin(t, timed, opens, 5*time.Second)

	time.Sleep(2 * time.Second)
	for name, uid := range uids {
		in := getInstance(c, ns, name)
		if in.Status.LastPlan.UID != uid || in.Status.Waiting != nil {
			t.Errorf("%s: the plan that ran is %s, not the one that waited (%s); waiting %+v", name, in.Status.LastPlan.UID, uid, in.Status.Waiting)
		}
		// PlanStarted comes with a plan's first progress write, which a plan done within 2 s
		// skips (docs/design.md, Events): at most one.
		if n := countEvents(t, c, ns, name, "PlanStarted"); n > 1 {
			t.Errorf("%s: %d PlanStarted events, want exactly one run", name, n)
		}
		if n := countEvents(t, c, ns, name, "PlanFinished"); n != 1 {
			t.Errorf("%s: %d PlanFinished events, want exactly one run", name, n)
		}
	}
	if !strings.Contains(k.logs(), fmt.Sprintf("context=kudod/%s/zk state=pending description=\"deploy PENDING: awaiting approval\"", ns)) {
		t.Errorf("no pending commit status for zk:\n%s", tail(k.logs(), 30))
	}
}
