package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// slowPackage has a serial plan of n steps, each a Deployment that is Available only after
// its pod has been ready for two seconds (minReadySeconds).
func slowPackage(n int) map[string]string {
	var tasks, steps strings.Builder
	files := map[string]string{}
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&tasks, "  - name: s%d\n    kind: Apply\n    spec:\n      resources: [s%d.yaml]\n", i, i)
		fmt.Fprintf(&steps, "          - name: step%d\n            tasks: [s%d]\n", i, i)
		files[fmt.Sprintf("operators/slow/1.0.0/templates/s%d.yaml", i)] = fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Name }}-s%d
spec:
  replicas: 1
  minReadySeconds: 2
  selector:
    matchLabels: {app: {{ .Name }}-s%d}
  template:
    metadata:
      labels: {app: {{ .Name }}-s%d}
    spec:
      containers: [{name: c, image: busybox}]
`, i, i, i)
	}
	files["operators/slow/1.0.0/operator.yaml"] = "apiVersion: kudo.dev/v1beta1\nname: slow\noperatorVersion: 1.0.0\nkubernetesVersion: 1.20.0\ntasks:\n" + tasks.String() +
		"plans:\n  deploy:\n    phases:\n      - name: main\n        steps:\n" + steps.String()
	files["operators/slow/1.0.0/params.yaml"] = "parameters: []\n"
	return files
}

// TestKilledDaemonResumesThePlan: SIGKILL the daemon five times, each time in a different step
// of a six-step plan. After every restart the same plan resumes where it was (no completed
// step runs again, no step goes back) and finally completes; a step is never reported
// complete before its Deployment is Available.
func TestKilledDaemonResumesThePlan(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	repo := testenv.NewGitRepo(t)
	files := slowPackage(6)
	files["instances/slow.yaml"] = instanceFile(ns, "slow", "slow", "", "")
	rev := repo.Commit("slow", files)
	k := startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))

	w := &stepWatcher{t: t, c: c, ns: ns, name: "slow"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.watch(ctx)

	for kill := 1; kill <= 5; kill++ {
		// Kill while step `kill` runs: it has written its Deployment, which is not available
		// yet, and the status does not call it complete. (The first step of a run may not be
		// recorded IN_PROGRESS yet: the first progress write waits two seconds.)
		eventually(t, 2*time.Minute, fmt.Sprintf("step%d to be running", kill), func() (bool, string) {
			st := w.stepStatus(kill)
			dep := &appsv1.Deployment{}
			err := c.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: fmt.Sprintf("slow-s%d", kill)}, dep)
			return err == nil && dep.Status.AvailableReplicas == 0 && st != v1alpha1.StatusComplete, string(st)
		})
		k.kill()
		t.Logf("killed kudod in step%d (%d steps complete)", kill, w.completeSteps())
		k.start()
	}
	in := waitPlan(t, c, ns, "slow", "deploy", v1alpha1.StatusComplete, rev, 3*time.Minute)
	cancel()
	if w.err() != nil {
		t.Fatal(w.err())
	}
	if uids := w.uids(); len(uids) != 1 {
		t.Fatalf("the plan restarted instead of resuming: plan UIDs %v", uids)
	}
	if in.Status.ActivePlan != nil {
		t.Fatalf("a completed plan is still active: %+v", in.Status.ActivePlan)
	}
}

// stepWatcher follows an Instance's deploy plan and checks, whenever it sees a step complete,
// that the step's Deployment is Available and that no step ever goes back.
type stepWatcher struct {
	t        *testing.T
	c        *testenv.Cluster
	ns, name string

	mu       chanMutex
	status   map[int]v1alpha1.ExecutionStatus
	seenUIDs map[string]bool
	failure  error
}

type chanMutex chan struct{}

func (m *chanMutex) lock() {
	if *m == nil {
		*m = make(chan struct{}, 1)
	}
	*m <- struct{}{}
}
func (m *chanMutex) unlock() { <-*m }

func (w *stepWatcher) watch(ctx context.Context) {
	for ctx.Err() == nil {
		in := getInstance(w.c, w.ns, w.name)
		if in != nil {
			w.observe(ctx, in)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (w *stepWatcher) observe(ctx context.Context, in *v1alpha1.Instance) {
	ps := planStatus(in, "deploy")
	if ps == nil || len(ps.Phases) == 0 {
		return
	}
	w.mu.lock()
	defer w.mu.unlock()
	if w.status == nil {
		w.status, w.seenUIDs = map[int]v1alpha1.ExecutionStatus{}, map[string]bool{}
	}
	w.seenUIDs[ps.UID] = true
	for i, st := range ps.Phases[0].Steps {
		n := i + 1
		prev := w.status[n]
		if prev == v1alpha1.StatusComplete && st.Status != v1alpha1.StatusComplete && w.failure == nil {
			w.failure = fmt.Errorf("step%d went back from COMPLETE to %s", n, st.Status)
		}
		if st.Status == v1alpha1.StatusComplete && prev != v1alpha1.StatusComplete {
			// The check outlives the watch: the test stops watching as soon as the plan is
			// COMPLETE, which may be while this read of the last step's Deployment is in flight.
			readCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			dep := &appsv1.Deployment{}
			err := w.c.Client.Get(readCtx, types.NamespacedName{Namespace: w.ns, Name: fmt.Sprintf("%s-s%d", w.name, n)}, dep)
			cancel()
			if (err != nil || dep.Status.AvailableReplicas < 1) && w.failure == nil {
				w.failure = fmt.Errorf("step%d reported COMPLETE while its Deployment is not available (%v, %+v)", n, err, dep.Status)
			}
		}
		w.status[n] = st.Status
	}
}

func (w *stepWatcher) stepStatus(n int) v1alpha1.ExecutionStatus {
	w.mu.lock()
	defer w.mu.unlock()
	return w.status[n]
}

func (w *stepWatcher) completeSteps() int {
	w.mu.lock()
	defer w.mu.unlock()
	n := 0
	for _, s := range w.status {
		if s == v1alpha1.StatusComplete {
			n++
		}
	}
	return n
}

func (w *stepWatcher) err() error {
	w.mu.lock()
	defer w.mu.unlock()
	return w.failure
}

func (w *stepWatcher) uids() []string {
	w.mu.lock()
	defer w.mu.unlock()
	var out []string
	for u := range w.seenUIDs {
		out = append(out, u)
	}
	return out
}
