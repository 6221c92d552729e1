package e2e

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// drillPackage is the package "drill" at version: a serial deploy of steps, each a Deployment
// that carries the GEN parameter and the version, Available a second after its pod is ready.
func drillPackage(version string, steps int) map[string]string {
	dir := "operators/drill/" + version + "/"
	var tasks, plan strings.Builder
	files := map[string]string{dir + "params.yaml": "parameters:\n  - name: GEN\n    default: \"0\"\n"}
	for i := 1; i <= steps; i++ {
		fmt.Fprintf(&tasks, "  - name: s%d\n    kind: Apply\n    spec:\n      resources: [s%d.yaml]\n", i, i)
		fmt.Fprintf(&plan, "          - name: step%d\n            tasks: [s%d]\n", i, i)
		files[fmt.Sprintf("%stemplates/s%d.yaml", dir, i)] = fmt.Sprintf(`apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Name }}-s%[1]d
  annotations:
    drill/gen: "{{ .Params.GEN }}"
    drill/version: "%[2]s"
spec:
  replicas: 1
  minReadySeconds: 1
  selector:
    matchLabels: {app: {{ .Name }}-s%[1]d}
  template:
    metadata:
      labels: {app: {{ .Name }}-s%[1]d}
      annotations: {drill/gen: "{{ .Params.GEN }}"}
    spec:
      containers: [{name: c, image: "busybox:%[2]s"}]
`, i, version)
	}
	files[dir+"operator.yaml"] = "apiVersion: kudo.dev/v1beta1\nname: drill\noperatorVersion: " + version +
		"\nkubernetesVersion: 1.20.0\ntasks:\n" + tasks.String() + "plans:\n  deploy:\n    phases:\n      - name: main\n        steps:\n" + plan.String()
	return files
}

// drillInstance is an instance file of package drill.
func drillInstance(ns, name, version string, gen int) string {
	return instanceFile(ns, name, "drill", version, fmt.Sprintf("    GEN: \"%d\"\n", gen))
}

// drillCommit is one commit of the series: the files it changes ("" removes one).
type drillCommit struct {
	msg   string
	files func(ns string) map[string]string
}

// The series the kill drill commits: parameter changes, an upgrade that adds a step, a removal.
// The last commit changes every remaining instance, so each must run its whole plan again.
var drillSeries = []drillCommit{
	{"three instances", func(ns string) map[string]string {
		f := drillPackage("1.0.0", 3)
		for name, v := range drillPackage("1.1.0", 4) {
			f[name] = v
		}
		f["instances/a.yaml"] = drillInstance(ns, "a", "1.0.0", 1)
		f["instances/b.yaml"] = drillInstance(ns, "b", "1.0.0", 1)
		f["instances/c.yaml"] = drillInstance(ns, "c", "1.0.0", 1)
		return f
	}},
	{"a: GEN 2", func(ns string) map[string]string {
		return map[string]string{"instances/a.yaml": drillInstance(ns, "a", "1.0.0", 2)}
	}},
	{"b and c: GEN 2", func(ns string) map[string]string {
		return map[string]string{"instances/b.yaml": drillInstance(ns, "b", "1.0.0", 2), "instances/c.yaml": drillInstance(ns, "c", "1.0.0", 2)}
	}},
	{"a and b: upgrade to 1.1.0 (a fourth step)", func(ns string) map[string]string {
		return map[string]string{"instances/a.yaml": drillInstance(ns, "a", "1.1.0", 3), "instances/b.yaml": drillInstance(ns, "b", "1.1.0", 3)}
	}},
	{"remove c", func(string) map[string]string { return map[string]string{"instances/c.yaml": ""} }},
	{"a and b: GEN 4", func(ns string) map[string]string {
		return map[string]string{"instances/a.yaml": drillInstance(ns, "a", "1.1.0", 4), "instances/b.yaml": drillInstance(ns, "b", "1.1.0", 4)}
	}},
}

// killSchedule is when the kill drill kills the daemon: after each start it waits before[i]
// and kills it; commit[i] is the index in drillSeries committed i-th kill into the run (after
// commitAfter[i] of it), or -1.
type killSchedule struct {
	before      []time.Duration
	commit      []int
	commitAfter []time.Duration
}

func newKillSchedule(r *rand.Rand, kills, commits int) killSchedule {
	s := killSchedule{before: make([]time.Duration, kills), commit: make([]int, kills), commitAfter: make([]time.Duration, kills)}
	for i := range s.before {
		s.before[i] = 300*time.Millisecond + time.Duration(r.Int64N(int64(4200*time.Millisecond)))
		s.commitAfter[i] = time.Duration(r.Int64N(int64(s.before[i])))
		s.commit[i] = -1
	}
	// The later commits go to distinct kills, none in the first (the daemon starts on the
	// first commit) and none after the third last (the last commit meets kills too).
	slots := r.Perm(kills - 3)[:commits-1]
	slices.Sort(slots)
	for j, slot := range slots {
		s.commit[slot+1] = j + 1
	}
	return s
}

func (s killSchedule) String() string {
	var b strings.Builder
	for i, d := range s.before {
		if s.commit[i] >= 0 {
			fmt.Fprintf(&b, " [commit %d at %s]", s.commit[i]+1, s.commitAfter[i].Round(time.Millisecond))
		}
		fmt.Fprintf(&b, " kill@%s", d.Round(time.Millisecond))
	}
	return strings.TrimSpace(b.String())
}

// TestDrillDaemonKilledAtRandom: kudod is SIGKILLed at 20 random moments (seeded) while a
// series of commits — parameter changes, an upgrade that adds a step, a removal — lands. Then
// every instance converges at the last commit: its plan COMPLETE with every step COMPLETE,
// every step's Deployment there with the last commit's content, and the audit log shows each
// step written after the last commit, in step order; the removed instance and its objects are
// gone.
func TestDrillDaemonKilledAtRandom(t *testing.T) {
	t.Parallel()
	drillTime(t)
	r := drillRand(t)
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	repo := testenv.NewGitRepo(t)
	revs := []string{repo.Commit(drillSeries[0].msg, drillSeries[0].files(ns))}
	sched := newKillSchedule(r, 20, len(drillSeries))
	t.Logf("schedule: %s", sched)

	w := &drillWatcher{c: c, ns: ns, revs: revs, seen: map[string]bool{}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go w.watch(ctx)
	k := startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))
	var lastCommit time.Time
	loop := time.Now()
	for i := range sched.before {
		wait := sched.before[i]
		if j := sched.commit[i]; j >= 0 {
			time.Sleep(sched.commitAfter[i])
			lastCommit = time.Now()
			revs = append(revs, repo.Commit(drillSeries[j].msg, drillSeries[j].files(ns)))
			w.committed(revs[len(revs)-1])
			wait -= sched.commitAfter[i]
		}
		time.Sleep(wait)
		k.kill()
		k.start()
	}
	t.Logf("20 kills in %s", time.Since(loop).Round(time.Second))
	if len(revs) != len(drillSeries) {
		t.Fatalf("committed %d of %d commits", len(revs), len(drillSeries))
	}
	last := revs[len(revs)-1]
	t.Logf("20 kills done; waiting for convergence at %.7s", last)
	converging := time.Now()

	for _, name := range []string{"a", "b"} {
		in := waitPlan(t, c, ns, name, "deploy", v1alpha1.StatusComplete, last, 3*time.Minute)
		ps := planStatus(in, "deploy")
		if ps.Revision != "" && ps.Revision != last {
			t.Errorf("%s: deploy ran for %.7s, want %.7s", name, ps.Revision, last)
		}
		var steps []string
		for _, ph := range ps.Phases {
			if ph.Status != v1alpha1.StatusComplete {
				t.Errorf("%s: phase %s is %s", name, ph.Name, ph.Status)
			}
			for _, st := range ph.Steps {
				steps = append(steps, st.Name)
				if st.Status != v1alpha1.StatusComplete {
					t.Errorf("%s: step %s is %s", name, st.Name, st.Status)
				}
			}
		}
		if want := []string{"step1", "step2", "step3", "step4"}; !slices.Equal(steps, want) {
			t.Errorf("%s: steps %v, want %v", name, steps, want)
		}
		for i := 1; i <= 4; i++ {
			dep := &appsv1.Deployment{}
			if err := c.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: fmt.Sprintf("%s-s%d", name, i)}, dep); err != nil {
				t.Errorf("%s step%d: %v", name, i, err)
				continue
			}
			if dep.Annotations["drill/gen"] != "4" || dep.Annotations["drill/version"] != "1.1.0" || dep.Status.AvailableReplicas != 1 {
				t.Errorf("%s step%d: Deployment %v, available %d; want GEN 4 of 1.1.0, available", name, i, dep.Annotations, dep.Status.AvailableReplicas)
			}
		}
	}
	eventually(t, time.Minute, "the removed instance and its objects to be gone", func() (bool, string) {
		if getInstance(c, ns, "c") != nil {
			return false, "instance c is still there"
		}
		for i := 1; i <= 3; i++ {
			if exists(t, c, &appsv1.Deployment{}, ns, fmt.Sprintf("c-s%d", i)) {
				return false, fmt.Sprintf("c-s%d is still there", i)
			}
		}
		return true, ""
	})
	t.Logf("converged %s after the last kill", time.Since(converging).Round(time.Second))
	cancel()
	if checked, err := w.result(); err != nil {
		t.Error(err)
	} else {
		t.Logf("%d steps seen COMPLETE along the way, each with its Deployment written and available", checked)
	}
	checkStepWritesInOrder(t, c, ns, []string{"a", "b"}, 4, lastCommit)
}

// drillGens is each instance's GEN at each commit of drillSeries (0: removed).
var drillGens = map[string][]int{"a": {1, 2, 2, 3, 3, 4}, "b": {1, 1, 2, 3, 3, 4}, "c": {1, 1, 2, 2, 0, 0}}

// drillWatcher follows the deploy plans of the kill drill's instances while the daemon is
// killed again and again. Whenever it first sees a step COMPLETE, the step's Deployment must
// be Available and hold at least the GEN of the plan's commit (a later plan may have written
// a higher one since: GEN only grows); a step of a plan never goes back from COMPLETE.
type drillWatcher struct {
	c  *testenv.Cluster
	ns string

	mu      sync.Mutex
	revs    []string
	seen    map[string]bool // plan UID/step seen COMPLETE
	failure error
	checked int
}

func (w *drillWatcher) committed(rev string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.revs = append(w.revs, rev)
}

func (w *drillWatcher) result() (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.checked, w.failure
}

func (w *drillWatcher) watch(ctx context.Context) {
	for ctx.Err() == nil {
		for name := range drillGens {
			if in := getInstance(w.c, w.ns, name); in != nil && in.DeletionTimestamp == nil {
				w.observe(ctx, name, in)
			}
		}
		select {
		case <-ctx.Done():
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (w *drillWatcher) observe(ctx context.Context, name string, in *v1alpha1.Instance) {
	ps := planStatus(in, "deploy")
	if ps == nil {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	commit := slices.Index(w.revs, ps.Revision)
	if commit < 0 || w.failure != nil {
		return // a commit the watcher has not been told of yet
	}
	for _, ph := range ps.Phases {
		for _, st := range ph.Steps {
			key := ps.UID + "/" + st.Name
			switch {
			case st.Status == v1alpha1.StatusComplete && !w.seen[key]:
				w.seen[key] = true
				w.checked++
				obj := name + "-s" + strings.TrimPrefix(st.Name, "step")
				dep := &appsv1.Deployment{}
				if err := w.c.Client.Get(ctx, types.NamespacedName{Namespace: w.ns, Name: obj}, dep); err != nil {
					w.failure = fmt.Errorf("%s: %s of the plan for %.7s is COMPLETE, but its Deployment: %v", name, st.Name, ps.Revision, err)
					return
				}
				gen, _ := strconv.Atoi(dep.Annotations["drill/gen"])
				if want := drillGens[name][commit]; gen < want || dep.Status.AvailableReplicas < 1 {
					w.failure = fmt.Errorf("%s: %s of the plan for %.7s (GEN %d) is COMPLETE, but %s holds GEN %d with %d available", name, st.Name, ps.Revision, want, obj, gen, dep.Status.AvailableReplicas)
					return
				}
			case st.Status != v1alpha1.StatusComplete && w.seen[key]:
				w.failure = fmt.Errorf("%s: %s of plan %s went back from COMPLETE to %s", name, st.Name, ps.UID, st.Status)
				return
			}
		}
	}
}

// checkStepWritesInOrder reads the audit log: each instance's step Deployments were written by
// kudod after since, and the last write of each step came before the last write of the next.
func checkStepWritesInOrder(t *testing.T, c *testenv.Cluster, ns string, instances []string, steps int, since time.Time) {
	t.Helper()
	lastWrite := map[string]time.Time{}
	for _, e := range c.AuditEvents(t) {
		if !strings.HasPrefix(e.UserAgent, "kudod") || e.DryRun() || e.ObjectRef == nil || e.ObjectRef.Namespace != ns ||
			e.ObjectRef.Resource != "deployments" || e.ObjectRef.Subresource != "" || e.ResponseStatus == nil || e.ResponseStatus.Code/100 != 2 {
			continue
		}
		if at := e.StageTimestamp.Time; at.After(lastWrite[e.ObjectRef.Name]) {
			lastWrite[e.ObjectRef.Name] = at
		}
	}
	for _, name := range instances {
		var prev time.Time
		for i := 1; i <= steps; i++ {
			obj := fmt.Sprintf("%s-s%d", name, i)
			at, ok := lastWrite[obj]
			switch {
			case !ok:
				t.Errorf("the audit log shows no write of %s by kudod", obj)
			case !at.After(since):
				t.Errorf("%s was last written at %s, before the last commit (%s)", obj, at.Format(time.StampMilli), since.Format(time.StampMilli))
			case !at.After(prev):
				t.Errorf("%s was last written at %s, not after the step before it (%s)", obj, at.Format(time.StampMilli), prev.Format(time.StampMilli))
			}
			prev = at
		}
	}
}
