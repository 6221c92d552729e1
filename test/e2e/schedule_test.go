package e2e

import (
	"strings"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// TestBackupRunsOnItsSchedule: database's backup plan, scheduled every minute, runs by itself
// (trigger schedule) and its Job completes; `kudod trigger` runs it once more by hand (trigger
// manual), and a trigger of cleanup is refused.
func TestBackupRunsOnItsSchedule(t *testing.T) {
	backupRunsOnItsSchedule(t, "database", "db-backup", func(r *testenv.GitRepo) { r.AddOperator("database", "1.0.0") })
}

// TestCatalogMySQLBackupRunsOnItsSchedule does the same with mysql.
func TestCatalogMySQLBackupRunsOnItsSchedule(t *testing.T) {
	backupRunsOnItsSchedule(t, "mysql", "backup-job", func(r *testenv.GitRepo) { r.AddCatalogOperator("mysql", "5.7-0.3.0") })
}

// backupRunsOnItsSchedule deploys operator, which add writes, as the instance db: its backup
// plan (steps: a volume claim, the Job named job, the Job's deletion) runs on a schedule.
func backupRunsOnItsSchedule(t *testing.T, operator, job string, add func(*testenv.GitRepo)) {
	repo := testenv.NewGitRepo(t)
	add(repo)
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	db := instanceFile(ns, "db", operator, "", "") + "  schedules:\n    - name: every-minute\n      plan: backup\n      cron: \"* * * * *\"\n      startingDeadlineSeconds: 30\n"
	rev := repo.Commit(operator+" with a backup schedule", map[string]string{"instances/db.yaml": db})
	startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))
	waitPlan(t, c, ns, "db", "deploy", v1alpha1.StatusComplete, rev, 3*time.Minute)

	// The next minute boundary is at most a minute away.
	in := waitPlan(t, c, ns, "db", "backup", v1alpha1.StatusComplete, "", 2*time.Minute)
	if in.Status.LastPlan.Trigger != v1alpha1.TriggerSchedule {
		t.Fatalf("backup ran with trigger %s", in.Status.LastPlan.Trigger)
	}
	var sched v1alpha1.ScheduleStatus
	for _, s := range in.Status.Schedules {
		if s.Name == "every-minute" {
			sched = s
		}
	}
	if sched.LastScheduleTime == nil || sched.LastRunUID != in.Status.LastPlan.UID || sched.NextScheduleTime == nil {
		t.Fatalf("schedule status: %+v", sched)
	}
	// The backup step completes only once its Job has completed; the plan's last step deletes it.
	if p := planStatus(in, "backup"); p == nil || p.Phases[0].Steps[1].Status != v1alpha1.StatusComplete || p.Phases[0].Steps[2].Status != v1alpha1.StatusComplete {
		t.Fatalf("backup plan steps: %+v", p)
	}
	if exists(t, c, &batchv1.Job{}, ns, job) {
		t.Fatal("the backup plan's cleanup step left its Job")
	}

	// A manual run.
	scheduled := in.Status.LastPlan.UID
	if _, errOut, code := runCLI(t, "trigger", "db", "backup", "-n", ns, "--kubeconfig", c.Kubeconfig); code != 0 {
		t.Fatalf("kudod trigger: exit %d: %s", code, errOut)
	}
	eventually(t, time.Minute, "the manual backup", func() (bool, string) {
		in := getInstance(c, ns, "db")
		lp := in.Status.LastPlan
		return lp.UID != scheduled && lp.Trigger == v1alpha1.TriggerManual && lp.Status == v1alpha1.StatusComplete, string(lp.Trigger) + " " + string(lp.Status)
	})
	_, errOut, code := runCLI(t, "trigger", "db", "cleanup", "-n", ns, "--kubeconfig", c.Kubeconfig)
	if code != 2 || !strings.Contains(errOut, "cleanup") {
		t.Fatalf("triggering cleanup: exit %d: %s", code, errOut)
	}
}

// TestSuspendedInstanceRunsNothing: spec.suspend in git stops plans (and drift correction) and
// prunes nothing; kudod status shows it; resuming runs the held plan.
func TestSuspendedInstanceRunsNothing(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	repo := testenv.NewGitRepo(t)
	files := prunerPackage("kept.yaml, dropped.yaml", map[string]string{"kept.yaml": cmTemplate("kept"), "dropped.yaml": cmTemplate("dropped")})
	files["instances/p.yaml"] = instanceFile(ns, "p", "pruner", "", "")
	first := repo.Commit("pruner", files)
	startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))
	waitPlan(t, c, ns, "p", "deploy", v1alpha1.StatusComplete, first, 2*time.Minute)

	suspended := strings.Replace(instanceFile(ns, "p", "pruner", "", ""), "spec:\n", "spec:\n  suspend: true\n", 1)
	edit := prunerPackage("kept.yaml", map[string]string{"kept.yaml": cmTemplate("kept"), "dropped.yaml": ""})
	edit["instances/p.yaml"] = suspended
	held := repo.Commit("suspend and drop a template", edit)
	eventually(t, 30*time.Second, "the instance to be suspended with the new desired state", func() (bool, string) {
		in := getInstance(c, ns, "p")
		return in.Spec.Suspend && in.Spec.Source.Revision == held, in.Spec.Source.Revision
	})
	consistently(t, 3*time.Second, "no plan while suspended, nothing pruned", func() (bool, string) {
		in := getInstance(c, ns, "p")
		return in.Status.LastPlan.Revision == first && exists(t, c, configMapObj(), ns, "p-dropped"), in.Status.LastPlan.Revision
	})
	out, _, code := runCLI(t, "status", "p", "-n", ns, "--kubeconfig", c.Kubeconfig)
	if code != 0 || !strings.Contains(out, "[SUSPENDED]") {
		t.Fatalf("kudod status does not show the suspension (exit %d):\n%s", code, out)
	}

	resumed := repo.Commit("resume", map[string]string{"instances/p.yaml": instanceFile(ns, "p", "pruner", "", "")})
	waitPlan(t, c, ns, "p", "deploy", v1alpha1.StatusComplete, resumed, time.Minute)
	eventually(t, 30*time.Second, "the dropped object to be pruned once resumed", func() (bool, string) {
		return !exists(t, c, configMapObj(), ns, "p-dropped"), "still there"
	})
}
