package daemon

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// fakeClock is the daemon's clock in schedule tests: time moves only when the test says so.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

const scheduleOperator = `apiVersion: kudo.dev/v1beta1
name: sched
operatorVersion: 1.0.0
kubernetesVersion: 1.20.0
tasks:
  - name: config
    kind: Apply
    spec:
      resources: [config.yaml]
  - name: job
    kind: Apply
    spec:
      resources: [job.yaml]
  - name: after
    kind: Apply
    spec:
      resources: [after.yaml]
  - name: noop
    kind: Dummy
    spec: {done: true}
plans:
  deploy:
    phases:
      - name: main
        steps:
          - name: config
            tasks: [config]
  snapshot:
    phases:
      - name: main
        steps:
          - name: snap
            tasks: [noop]
  long:
    phases:
      - name: main
        steps:
          - name: job
            tasks: [job]
          - name: after
            tasks: [after]
`

func scheduleFiles(ns, schedules string) map[string]string {
	return map[string]string{
		"operators/sched/1.0.0/operator.yaml":         scheduleOperator,
		"operators/sched/1.0.0/params.yaml":           "parameters:\n  - name: RUN\n    default: \"0\"\n    trigger: long\n",
		"operators/sched/1.0.0/templates/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Name }}-config\ndata:\n  run: {{ .Params.RUN | quote }}\n",
		"operators/sched/1.0.0/templates/after.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Name }}-after\ndata: {}\n",
		"operators/sched/1.0.0/templates/job.yaml":    "apiVersion: batch/v1\nkind: Job\nmetadata:\n  name: {{ .Name }}-job-{{ .Params.RUN }}\nspec:\n  template:\n    spec:\n      restartPolicy: Never\n      containers: [{name: c, image: busybox}]\n",
		fmt.Sprintf("instances/%s/s.yaml", ns):        scheduleInstance(ns, "", schedules),
	}
}

func scheduleInstance(ns, params, schedules string) string {
	doc := fmt.Sprintf("apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: s\n  namespace: %s\nspec:\n  operator:\n    name: sched\n", ns)
	if params != "" {
		doc += "  parameters:\n" + params
	}
	return doc + "  schedules:\n" + schedules
}

// poke makes the daemon reconcile an Instance now (an annotation change is an update).
func poke(t *testing.T, c *testenv.Cluster, ns, name string) {
	t.Helper()
	in := getInstance(t, c, ns, name)
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{"test.kudod.dev/poke":"%d"}}}`, time.Now().UnixNano()))
	if err := c.Client.Patch(context.Background(), in, client.RawPatch(types.MergePatchType, patch)); err != nil {
		t.Fatal(err)
	}
}

func scheduleOf(in *v1alpha1.Instance, name string) v1alpha1.ScheduleStatus {
	for _, s := range in.Status.Schedules {
		if s.Name == name {
			return s
		}
	}
	return v1alpha1.ScheduleStatus{}
}

// TestScheduledPlans drives one instance's schedules with the daemon's clock: a run on time in
// Europe/Berlin, never twice for the same time (also not after a restart), Forbid skipping
// while another plan runs, an edit in git taking effect, and suspend.
func TestScheduledPlans(t *testing.T) {
	c := testenv.APIServer(t)
	ns := uniqueNamespace(t)
	clock := &fakeClock{t: time.Date(2026, 6, 1, 0, 20, 0, 0, time.UTC)} // 02:20 in Berlin (CEST)
	repo := testenv.NewGitRepo(t)
	daily := "    - name: nightly\n      plan: snapshot\n      cron: \"30 2 * * *\"\n      timeZone: Europe/Berlin\n"
	first := repo.Commit("scheduled", scheduleFiles(ns, daily))
	withClock := func(o *Options, _ *Repository) { o.Now = clock.Now }
	stop := startStoppableDaemon(t, c, repo, withClock)
	planDone(t, c, ns, "s", "deploy", v1alpha1.StatusComplete, first)

	in := getInstance(t, c, ns, "s")
	st := scheduleOf(in, "nightly")
	if st.NextScheduleTime == nil || !st.NextScheduleTime.Time.Equal(time.Date(2026, 6, 1, 0, 30, 0, 0, time.UTC)) {
		t.Fatalf("next run %v, want 02:30 Berlin = 00:30 UTC", st.NextScheduleTime)
	}

	// 02:30 in Berlin: the snapshot plan runs, recorded with trigger schedule.
	clock.Set(time.Date(2026, 6, 1, 0, 30, 1, 0, time.UTC))
	poke(t, c, ns, "s")
	in = planDone(t, c, ns, "s", "snapshot", v1alpha1.StatusComplete, "")
	if in.Status.LastPlan.Trigger != v1alpha1.TriggerSchedule {
		t.Fatalf("trigger %s", in.Status.LastPlan.Trigger)
	}
	ran := in.Status.LastPlan.UID
	if got := scheduleOf(in, "nightly").LastScheduleTime; got == nil || !got.Time.Equal(time.Date(2026, 6, 1, 0, 30, 0, 0, time.UTC)) {
		t.Fatalf("lastScheduleTime %v", got)
	}

	// The same scheduled time never runs again: not on another reconcile, not after a restart.
	stop()
	stop = startStoppableDaemon(t, c, repo, withClock)
	clock.Set(time.Date(2026, 6, 1, 0, 31, 0, 0, time.UTC))
	poke(t, c, ns, "s")
	consistently(t, 2*time.Second, "no second run of 00:30", func() bool {
		return getInstance(t, c, ns, "s").Status.LastPlan.UID == ran
	})

	// Forbid (the default): the next night's run is skipped while another plan runs.
	long := repo.Commit("start the long plan", map[string]string{fmt.Sprintf("instances/%s/s.yaml", ns): scheduleInstance(ns, "    RUN: \"1\"\n", daily)})
	planDone(t, c, ns, "s", "long", v1alpha1.StatusInProgress, long)
	clock.Set(time.Date(2026, 6, 2, 0, 30, 5, 0, time.UTC))
	poke(t, c, ns, "s")
	eventually(t, 10*time.Second, "the run of 06-02 to be skipped", func() (bool, string) {
		st := scheduleOf(getInstance(t, c, ns, "s"), "nightly")
		return st.LastSkipped != nil && strings.Contains(st.LastSkipReason, "another plan is running: long"), st.LastSkipReason
	})
	completeJob(t, c, ns, "s-job-1")
	planDone(t, c, ns, "s", "long", v1alpha1.StatusComplete, long)

	// Edited in git: the new time applies from the next poll.
	hourly := "    - name: nightly\n      plan: snapshot\n      cron: \"15 * * * *\"\n      timeZone: Europe/Berlin\n"
	repo.Commit("hourly", map[string]string{fmt.Sprintf("instances/%s/s.yaml", ns): scheduleInstance(ns, "    RUN: \"1\"\n", hourly)})
	eventually(t, 10*time.Second, "the edited schedule's next run", func() (bool, string) {
		st := scheduleOf(getInstance(t, c, ns, "s"), "nightly")
		return st.Cron == "15 * * * *" && st.NextScheduleTime != nil && st.NextScheduleTime.Time.Equal(time.Date(2026, 6, 2, 1, 15, 0, 0, time.UTC)), fmt.Sprint(st.Cron, st.NextScheduleTime)
	})
	clock.Set(time.Date(2026, 6, 2, 1, 15, 1, 0, time.UTC))
	poke(t, c, ns, "s")
	in = planDone(t, c, ns, "s", "snapshot", v1alpha1.StatusComplete, "")
	if in.Status.LastPlan.UID == ran {
		t.Fatal("the edited schedule did not run")
	}
	ran = in.Status.LastPlan.UID

	// Suspended schedules do not run.
	suspended := "    - name: nightly\n      plan: snapshot\n      cron: \"15 * * * *\"\n      timeZone: Europe/Berlin\n      suspend: true\n"
	repo.Commit("suspend", map[string]string{fmt.Sprintf("instances/%s/s.yaml", ns): scheduleInstance(ns, "    RUN: \"1\"\n", suspended)})
	eventually(t, 10*time.Second, "the suspension to reach the instance", func() (bool, string) {
		in := getInstance(t, c, ns, "s")
		return len(in.Spec.Schedules) == 1 && in.Spec.Schedules[0].Suspend, ""
	})
	clock.Set(time.Date(2026, 6, 2, 2, 15, 1, 0, time.UTC))
	poke(t, c, ns, "s")
	consistently(t, 2*time.Second, "no run while suspended", func() bool {
		return getInstance(t, c, ns, "s").Status.LastPlan.UID == ran
	})
	stop()
}

// TestMissedRunsAfterDowntime: after downtime only the most recent missed run executes, and
// only within startingDeadlineSeconds; outside it the run is recorded as skipped.
func TestMissedRunsAfterDowntime(t *testing.T) {
	c := testenv.APIServer(t)
	ns := uniqueNamespace(t)
	clock := &fakeClock{t: time.Date(2026, 1, 10, 11, 0, 0, 0, time.UTC)}
	repo := testenv.NewGitRepo(t)
	hourly := "    - name: hourly\n      plan: snapshot\n      cron: \"@hourly\"\n      startingDeadlineSeconds: 600\n"
	first := repo.Commit("scheduled", scheduleFiles(ns, hourly))
	withClock := func(o *Options, _ *Repository) { o.Now = clock.Now }
	stop := startStoppableDaemon(t, c, repo, withClock)
	planDone(t, c, ns, "s", "deploy", v1alpha1.StatusComplete, first)
	stop()

	// Down for five hours; back five minutes after the last missed time: it runs once, for 16:00.
	clock.Set(time.Date(2026, 1, 10, 16, 5, 0, 0, time.UTC))
	stop = startStoppableDaemon(t, c, repo, withClock)
	in := planDone(t, c, ns, "s", "snapshot", v1alpha1.StatusComplete, "")
	st := scheduleOf(in, "hourly")
	if !st.LastScheduleTime.Time.Equal(time.Date(2026, 1, 10, 16, 0, 0, 0, time.UTC)) || in.Status.LastPlan.UID != "hourly-"+fmt.Sprint(time.Date(2026, 1, 10, 16, 0, 0, 0, time.UTC).Unix()/60) {
		t.Fatalf("ran %s for %v, want the 16:00 run only", in.Status.LastPlan.UID, st.LastScheduleTime)
	}
	stop()

	// Down again; back 20 minutes after 17:00, beyond the 10-minute deadline: skipped.
	clock.Set(time.Date(2026, 1, 10, 17, 20, 0, 0, time.UTC))
	stop = startStoppableDaemon(t, c, repo, withClock)
	eventually(t, 10*time.Second, "the late run to be skipped", func() (bool, string) {
		st := scheduleOf(getInstance(t, c, ns, "s"), "hourly")
		return st.LastSkipped != nil && st.LastSkipped.Time.Equal(time.Date(2026, 1, 10, 17, 0, 0, 0, time.UTC)), st.LastSkipReason
	})
	if getInstance(t, c, ns, "s").Status.LastPlan.UID != in.Status.LastPlan.UID {
		t.Fatal("a run outside the deadline ran")
	}
	stop()
}

// TestReplaceScheduleWaitsForTheRunningStep: a Replace schedule lets the running plan finish
// the step it is in, then supersedes the rest of it.
func TestReplaceScheduleWaitsForTheRunningStep(t *testing.T) {
	c := testenv.APIServer(t)
	ns := uniqueNamespace(t)
	clock := &fakeClock{t: time.Date(2026, 3, 1, 9, 59, 0, 0, time.UTC)}
	repo := testenv.NewGitRepo(t)
	replace := "    - name: every-hour\n      plan: snapshot\n      cron: \"0 * * * *\"\n      concurrencyPolicy: Replace\n"
	first := repo.Commit("scheduled", scheduleFiles(ns, replace))
	stop := startStoppableDaemon(t, c, repo, func(o *Options, _ *Repository) { o.Now = clock.Now })
	defer stop()
	planDone(t, c, ns, "s", "deploy", v1alpha1.StatusComplete, first)
	long := repo.Commit("long plan", map[string]string{fmt.Sprintf("instances/%s/s.yaml", ns): scheduleInstance(ns, "    RUN: \"2\"\n", replace)})
	planDone(t, c, ns, "s", "long", v1alpha1.StatusInProgress, long)

	clock.Set(time.Date(2026, 3, 1, 10, 0, 1, 0, time.UTC))
	poke(t, c, ns, "s")
	consistently(t, time.Second, "the long plan to keep its running step", func() bool {
		return getInstance(t, c, ns, "s").Status.LastPlan.Name == "long"
	})
	completeJob(t, c, ns, "s-job-2") // the running step ends
	in := planDone(t, c, ns, "s", "snapshot", v1alpha1.StatusComplete, "")
	lp := planStatusOf(in, "long")
	if lp.Status != v1alpha1.StatusFatalError || !strings.Contains(lp.Message, "superseded by a Replace schedule") {
		t.Fatalf("long plan: %s %q", lp.Status, lp.Message)
	}
	if lp.Phases[0].Steps[0].Status != v1alpha1.StatusComplete || lp.Phases[0].Steps[1].Status != v1alpha1.StatusPending {
		t.Fatalf("the running step did not finish or the next one started: %+v", lp.Phases[0].Steps)
	}
	if exists := getConfigMap(t, c, ns, "s-after"); exists {
		t.Fatal("the step after the replaced one ran")
	}
}

func planStatusOf(in *v1alpha1.Instance, name string) v1alpha1.PlanStatus {
	for _, p := range in.Status.Plans {
		if p.Name == name {
			return p
		}
	}
	return v1alpha1.PlanStatus{}
}

func getConfigMap(t *testing.T, c *testenv.Cluster, ns, name string) bool {
	t.Helper()
	_, ok := configValue(t, c, ns, name)
	return ok
}

// completeJob marks a Job complete, as the Job controller would (envtest runs no controllers).
func completeJob(t *testing.T, c *testenv.Cluster, ns, name string) {
	t.Helper()
	job := &batchv1.Job{}
	eventually(t, 10*time.Second, "job "+name, func() (bool, string) {
		return c.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, job) == nil, ""
	})
	now := metav1.Now()
	job.Status.StartTime = &now
	job.Status.CompletionTime = &now
	job.Status.Succeeded = 1
	job.Status.Conditions = []batchv1.JobCondition{
		{Type: batchv1.JobSuccessCriteriaMet, Status: corev1.ConditionTrue, LastTransitionTime: now},
		{Type: batchv1.JobComplete, Status: corev1.ConditionTrue, LastTransitionTime: now},
	}
	if err := c.Client.Status().Update(context.Background(), job); err != nil {
		t.Fatal(err)
	}
}

// consistently fails if cond stops holding within d.
func consistently(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if !cond() {
			t.Fatalf("%s: did not hold", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
