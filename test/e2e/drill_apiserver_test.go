package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// TestDrillAPIServerRestartedMidPlan: the API server is restarted while a four-step plan runs.
// kudod keeps running, and the same plan resumes and completes: no step goes back from
// COMPLETE, none is called COMPLETE before its Deployment is Available, and the plan is not
// started afresh.
//
// It restarts the package's shared cluster, so it does not run in parallel with other tests
// (the parallel drills wait until it is done).
func TestDrillAPIServerRestartedMidPlan(t *testing.T) {
	drillTime(t)
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	repo := testenv.NewGitRepo(t)
	files := slowPackage(4)
	files["instances/slow.yaml"] = instanceFile(ns, "slow", "slow", "", "")
	rev := repo.Commit("slow", files)
	startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))

	w := &stepWatcher{t: t, c: c, ns: ns, name: "slow"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.watch(ctx)
	eventually(t, 2*time.Minute, "step2 to be in progress", func() (bool, string) {
		return w.stepStatus(2) == v1alpha1.StatusInProgress, string(w.stepStatus(2))
	})
	away := c.RestartAPIServer(t)
	t.Logf("API server restarted in step2 (%d steps complete), away for %s", w.completeSteps(), away.Round(100*time.Millisecond))

	back := time.Now()
	in := waitPlan(t, c, ns, "slow", "deploy", v1alpha1.StatusComplete, rev, 3*time.Minute)
	cancel()
	t.Logf("the plan completed %s after the API server was back", time.Since(back).Round(100*time.Millisecond))
	if err := w.err(); err != nil {
		t.Fatal(err)
	}
	if uids := w.uids(); len(uids) != 1 {
		t.Fatalf("the plan started afresh instead of resuming: plan UIDs %v", uids)
	}
	for _, ph := range planStatus(in, "deploy").Phases {
		for _, st := range ph.Steps {
			if st.Status != v1alpha1.StatusComplete {
				t.Errorf("step %s is %s", st.Name, st.Status)
			}
		}
	}
}
