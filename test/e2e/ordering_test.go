package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	eventsv1 "k8s.io/api/events/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// orderedFile is an instance file of the ordered test package in namespace ns, with spec
// lines after its parameters (dependsOn, approval, windows).
func orderedFile(ns, name, value, spec string) string {
	return instanceFile(ns, name, "ordered", "", "    VALUE: "+value+"\n") + spec
}

// events counts the events.k8s.io Events about an Instance with a reason, each repetition of
// a series counted.
func countEvents(t testing.TB, c *testenv.Cluster, ns, name, reason string) int {
	t.Helper()
	var list eventsv1.EventList
	if err := c.Client.List(context.Background(), &list, client.InNamespace(ns)); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range list.Items {
		if e.Regarding.Name != name || e.Reason != reason {
			continue
		}
		n++
		if e.Series != nil {
			n += int(e.Series.Count)
		}
	}
	return n
}

// waitWaiting waits until an Instance's plan waits for reason with a message containing text.
func waitWaiting(t testing.TB, c *testenv.Cluster, ns, name string, reason v1alpha1.WaitReason, text string, timeout time.Duration) *v1alpha1.Instance {
	t.Helper()
	var got *v1alpha1.Instance
	eventually(t, timeout, fmt.Sprintf("%s/%s to wait for %s", ns, name, reason), func() (bool, string) {
		got = getInstance(c, ns, name)
		if got == nil || got.Status.Waiting == nil {
			return false, "not waiting"
		}
		w := got.Status.Waiting
		return w.Reason == reason && strings.Contains(w.Message, text), fmt.Sprintf("%s: %s", w.Reason, w.Message)
	})
	return got
}

// stillWaiting checks for d that an Instance's plan uid keeps waiting: nothing runs, its plan
// tree says PENDING.
func stillWaiting(t testing.TB, c *testenv.Cluster, ns, name, uid string, d time.Duration) {
	t.Helper()
	consistently(t, d, fmt.Sprintf("%s/%s waits", ns, name), func() (bool, string) {
		in := getInstance(c, ns, name)
		if in == nil || in.Status.Waiting == nil || in.Status.Waiting.UID != uid || in.Status.ActivePlan != nil {
			return false, fmt.Sprintf("%+v", in.Status)
		}
		lp := in.Status.LastPlan
		return lp != nil && lp.UID == uid && lp.Status == v1alpha1.StatusPending, fmt.Sprintf("last plan %+v", lp)
	})
}

// TestDependenciesRunInOrder: zk, kafka (dependsOn zk) and app (dependsOn kafka), all new in
// one commit, deploy in that order, each after the previous one is COMPLETE; removing all
// three cleans up app, then kafka, then zk.
func TestDependenciesRunInOrder(t *testing.T) {
	t.Parallel()
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	repo := testenv.NewGitRepo(t)
	repo.AddOperator("ordered", "1.0.0")
	rev := repo.Commit("zk, kafka, app", map[string]string{
		"instances/app.yaml":   orderedFile(ns, "app", "one", "  dependsOn: [{name: kafka}]\n"),
		"instances/kafka.yaml": orderedFile(ns, "kafka", "one", "  dependsOn: [{name: zk, namespace: "+ns+"}]\n"),
		"instances/zk.yaml":    orderedFile(ns, "zk", "one", ""),
	})
	k := startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, "    allowEmpty: true\n"))

	// While zk deploys, kafka and app wait, saying for what.
	waitWaiting(t, c, ns, "kafka", v1alpha1.WaitDependency, "waiting for "+ns+"/zk (deploy", time.Minute)
	app := waitWaiting(t, c, ns, "app", v1alpha1.WaitDependency, "waiting for "+ns+"/kafka (deploy PENDING", time.Minute)
	if tree := app.Status.Plan("deploy"); tree == nil || tree.Status != v1alpha1.StatusPending || !strings.HasPrefix(tree.Message, "waiting for "+ns+"/kafka") {
		t.Errorf("app's deploy tree while it waits: %+v", tree)
	}
	var last *v1alpha1.PlanSummary
	for _, name := range []string{"zk", "kafka", "app"} {
		in := waitPlan(t, c, ns, name, "deploy", v1alpha1.StatusComplete, rev, 2*time.Minute)
		lp := in.Status.LastPlan
		t.Logf("%s: deploy from %s to %s", name, lp.StartTime.UTC().Format(time.RFC3339), lp.FinishTime.UTC().Format(time.RFC3339))
		if last != nil && lp.StartTime.Before(last.FinishTime) {
			t.Errorf("%s's deploy started at %s, before the deploy it depends on ended (%s)", name, lp.StartTime, last.FinishTime)
		}
		if in.Status.Waiting != nil {
			t.Errorf("%s still records a wait: %+v", name, in.Status.Waiting)
		}
		last = lp
	}
	if n := countEvents(t, c, ns, "app", "PlanWaiting"); n != 1 {
		t.Errorf("app: %d PlanWaiting events, want one per wait", n)
	}

	// Removal goes the other way: each instance is gone before what it depends on.
	gone := map[string]time.Time{}
	var mu sync.Mutex
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			for _, name := range []string{"zk", "kafka", "app"} {
				if getInstance(c, ns, name) == nil {
					mu.Lock()
					if _, seen := gone[name]; !seen {
						gone[name] = time.Now()
					}
					mu.Unlock()
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
	repo.Git("rm", "-q", "-r", "instances")
	repo.Commit("remove all three", nil)
	eventually(t, 2*time.Minute, "the three instances to be removed", func() (bool, string) {
		mu.Lock()
		defer mu.Unlock()
		return len(gone) == 3, fmt.Sprintf("gone: %v", gone)
	})
	cancel()
	if !gone["app"].Before(gone["kafka"]) || !gone["kafka"].Before(gone["zk"]) {
		t.Errorf("removed in the wrong order: app %s, kafka %s, zk %s", gone["app"].Format(time.StampMilli), gone["kafka"].Format(time.StampMilli), gone["zk"].Format(time.StampMilli))
	}
	if !strings.Contains(k.logs(), "waiting for the removal of "+ns+"/kafka") {
		t.Errorf("zk's removal did not wait for kafka's:\n%s", tail(k.logs(), 40))
	}
}

// TestDependencyCycleIsRejected: a commit with a cycle is rejected by kudod plan (exit 2,
// naming the cycle) and by the daemon (failure status); nothing of the instances on it is
// written, the others deploy.
func TestDependencyCycleIsRejected(t *testing.T) {
	t.Parallel()
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	repo := testenv.NewGitRepo(t)
	repo.AddOperator("ordered", "1.0.0")
	rev := repo.Commit("a cycle", map[string]string{
		"instances/a.yaml": orderedFile(ns, "a", "one", "  dependsOn: [{name: b}]\n"),
		"instances/b.yaml": orderedFile(ns, "b", "one", "  dependsOn: [{name: a}]\n"),
		"instances/c.yaml": orderedFile(ns, "c", "one", ""),
	})
	cycle := fmt.Sprintf("dependency cycle: %s/a → %s/b → %s/a", ns, ns, ns)
	out, _, code := runCLI(t, "plan", "--repo", repo.Dir, "--to", rev)
	if code != 2 || !strings.Contains(out, cycle) {
		t.Errorf("kudod plan: exit %d, want 2 naming the cycle:\n%s", code, out)
	}
	k := startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))
	waitPlan(t, c, ns, "c", "deploy", v1alpha1.StatusComplete, rev, time.Minute)
	eventually(t, 30*time.Second, "failure statuses for a and b", func() (bool, string) {
		logs := k.logs()
		for _, name := range []string{"a", "b"} {
			found := false
			for _, line := range strings.Split(logs, "\n") {
				if strings.Contains(line, "commit status") && strings.Contains(line, "kudod/"+ns+"/"+name) && strings.Contains(line, "state=failure") && strings.Contains(line, "dependency cycle") {
					found = true
				}
			}
			if !found {
				return false, "no failure status for " + name
			}
		}
		return true, ""
	})
	for _, name := range []string{"a", "b"} {
		if in := getInstance(c, ns, name); in != nil {
			t.Errorf("instance %s on the cycle was written: %+v", name, in.Spec)
		}
	}
}
