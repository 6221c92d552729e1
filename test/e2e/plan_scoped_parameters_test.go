package e2e

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// jobNames records the backup-name label of every Job created in a namespace: backup Jobs
// live only as long as their plan's step.
type jobNames struct {
	mu    sync.Mutex
	names []string
}

func watchJobNames(t *testing.T, c *testenv.Cluster, ns string) *jobNames {
	t.Helper()
	cs, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	w, err := cs.BatchV1().Jobs(ns).Watch(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	j := &jobNames{}
	go func() {
		for ev := range w.ResultChan() {
			if job, ok := ev.Object.(*batchv1.Job); ok && ev.Type == watch.Added {
				if name, ok := job.Labels["backup-name"]; ok {
					j.mu.Lock()
					j.names = append(j.names, name)
					j.mu.Unlock()
				}
			}
		}
	}()
	return j
}

func (j *jobNames) seen(name string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, n := range j.names {
		if n == name {
			return true
		}
	}
	return false
}

func (j *jobNames) String() string {
	j.mu.Lock()
	defer j.mu.Unlock()
	return strings.Join(j.names, ",")
}

// TestScheduledBackupNamesItsJob: database's schedule gives its backup a plan-scoped
// BACKUP_NAME from the scheduled time, "nightly-{{ .ScheduledTime | date "0102-1504" }}": the
// Job carries that name, the instance's spec is unchanged by the run, and the history lists
// the run with its value. `kudod trigger -p` names one run by hand; an unknown parameter is
// refused before anything runs.
func TestScheduledBackupNamesItsJob(t *testing.T) {
	repo := testenv.NewGitRepo(t)
	repo.AddOperator("database", "1.0.0")
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	jobs := watchJobNames(t, c, ns)
	db := instanceFile(ns, "db", "database", "", "") + `  schedules:
    - name: nightly
      plan: backup
      cron: "* * * * *"
      startingDeadlineSeconds: 30
      parameters:
        BACKUP_NAME: 'nightly-{{ .ScheduledTime | date "0102-1504" }}'
`
	rev := repo.Commit("database with a named backup", map[string]string{"instances/db.yaml": db})
	startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))
	deployed := waitPlan(t, c, ns, "db", "deploy", v1alpha1.StatusComplete, rev, 3*time.Minute)
	spec := deployed.Spec.DeepCopy()

	in := waitPlan(t, c, ns, "db", "backup", v1alpha1.StatusComplete, "", 2*time.Minute)
	var entry *v1alpha1.HistoryEntry
	for i := range in.Status.History {
		if e := &in.Status.History[i]; e.Plan == "backup" && e.Trigger == v1alpha1.TriggerSchedule {
			entry = e
		}
	}
	if entry == nil || entry.ScheduledTime == nil {
		t.Fatalf("the history lacks the scheduled backup: %+v", in.Status.History)
	}
	want := "nightly-" + entry.ScheduledTime.UTC().Format("0102-1504")
	if entry.Parameters["BACKUP_NAME"] != want || entry.Outcome != v1alpha1.OutcomeCompleted {
		t.Fatalf("history entry: %+v, want BACKUP_NAME %s", entry, want)
	}
	eventually(t, 10*time.Second, "the backup Job named "+want, func() (bool, string) { return jobs.seen(want), jobs.String() })
	if !equality.Semantic.DeepEqual(in.Spec, *spec) {
		t.Fatalf("the run changed the spec:\n%+v\nwas\n%+v", in.Spec, *spec)
	}
	if _, set := in.Spec.Parameters["BACKUP_NAME"]; set {
		t.Fatal("BACKUP_NAME reached spec.parameters")
	}
	out, _, _ := runCLI(t, "history", "db", "-n", ns, "--kubeconfig", c.Kubeconfig)
	if !strings.Contains(out, "schedule nightly") || !strings.Contains(out, "BACKUP_NAME="+want) {
		t.Errorf("kudod history does not list the scheduled backup with its name:\n%s", out)
	}

	// One run by hand, named on the command line.
	if _, errOut, code := runCLI(t, "trigger", "db", "backup", "-n", ns, "--kubeconfig", c.Kubeconfig, "-p", "BACKUP_NAME=before-upgrade", "--replace"); code != 0 {
		t.Fatalf("kudod trigger -p: exit %d: %s", code, errOut)
	}
	eventually(t, time.Minute, "the manual backup named before-upgrade", func() (bool, string) {
		in := getInstance(c, ns, "db")
		lp := in.Status.LastPlan
		return lp.Trigger == v1alpha1.TriggerManual && lp.Status == v1alpha1.StatusComplete && jobs.seen("before-upgrade"), fmt.Sprintf("%s %s, jobs %s", lp.Trigger, lp.Status, jobs)
	})

	// An unknown parameter is refused before anything runs.
	before := jobs.String()
	if _, errOut, code := runCLI(t, "trigger", "db", "backup", "-n", ns, "--kubeconfig", c.Kubeconfig, "-p", "BACKUP_NAM=typo", "--replace"); code != 0 {
		t.Fatalf("kudod trigger -p: exit %d: %s", code, errOut)
	}
	eventually(t, time.Minute, "the run with an unknown parameter to be refused", func() (bool, string) {
		in := getInstance(c, ns, "db")
		lp := in.Status.LastPlan
		return lp.Trigger == v1alpha1.TriggerManual && lp.Status == v1alpha1.StatusFatalError && strings.Contains(lp.Message, "BACKUP_NAM"), lp.Message
	})
	if got := jobs.String(); got != before {
		t.Fatalf("the refused run created Jobs: %s, was %s", got, before)
	}
}
