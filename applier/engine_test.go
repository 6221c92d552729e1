package applier_test

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"testing/fstest"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/manifests"
)

// pkgFromFiles builds a package "engine-test" from operator.yaml, params.yaml and templates.
func pkgFromFiles(t *testing.T, operator, params string, templates map[string]string) *manifests.Package {
	t.Helper()
	fsys := fstest.MapFS{
		"operator.yaml": {Data: []byte("apiVersion: kudo.dev/v1beta1\nname: engine-test\noperatorVersion: 1.0.0\nkubernetesVersion: 1.20.0\n" + operator)},
		"params.yaml":   {Data: []byte(params)},
	}
	for k, v := range templates {
		fsys["templates/"+k] = &fstest.MapFile{Data: []byte(v)}
	}
	p, err := manifests.Load(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func configMap(name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  value: \"{{ .Params.VALUE }}\"\n"
}

const valueParam = "parameters:\n  - name: VALUE\n    default: one\n  - name: EXTRA\n    default: \"true\"\n"

// exists reports whether the ConfigMap name exists in the test's namespace.
func (e *env) exists(t *testing.T, name string) bool {
	t.Helper()
	return e.existsAs(t, name, &corev1.ConfigMap{})
}

// existsAs reports whether an object of obj's kind named name exists in the test's namespace.
func (e *env) existsAs(t *testing.T, name string, obj client.Object) bool {
	t.Helper()
	err := e.cluster.Client.Get(context.Background(), types.NamespacedName{Namespace: e.namespace, Name: name}, obj)
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// TestStepWithAnInvalidObjectWritesNothing: a step with an object the API server would refuse
// writes nothing, including its first object (which is applied without a dry-run).
func TestStepWithAnInvalidObjectWritesNothing(t *testing.T) {
	for _, tc := range []struct{ name, bad, want, good string }{
		// A value the API server rejects in the dry-run.
		{"invalid port", "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  ports:\n    - port: 700000\n", "Service/%s/bad", ""},
		// A field the kind does not have: a create only warns about it unless asked to be
		// strict, and server-side apply refuses it, after the first object was written.
		{"unknown field", "apiVersion: v1\nkind: Service\nmetadata:\n  name: bad\nspec:\n  ports:\n    - port: 80\n      prot: TCP\n", `unknown field "spec.ports[0].prot"`, ""},
		// The same in the step's first object, which is applied without a dry-run: server-side
		// apply refuses it, and that is final too (not retried until the step's timeout).
		{"unknown field in the first object", "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: bad\ndata: {a: b}\nbinaryDatta: {}\n", `.binaryDatta: field not declared in schema`, "apiVersion: v1\nkind: Service\nmetadata:\n  name: good\nspec:\n  ports:\n    - port: 80\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, applier.Options{})
			pkg := pkgFromFiles(t, `tasks:
  - name: app
    kind: Apply
    spec:
      resources: [good.yaml, bad.yaml]
plans:
  deploy:
    phases:
      - name: main
        steps:
          - name: app
            tasks: [app]
`, valueParam, map[string]string{"good.yaml": cmp.Or(tc.good, configMap("good")), "bad.yaml": tc.bad})
			inst := e.instance(t, "atomic", pkg)
			r := run(inst, pkg, "deploy", nil)
			rp, err := e.engine.Render(context.Background(), r)
			if err != nil {
				t.Fatal(err)
			}
			err = e.engine.Execute(context.Background(), r, rp)
			want := tc.want
			if strings.Contains(want, "%s") {
				want = fmt.Sprintf(want, e.namespace)
			}
			if !applier.IsFatal(err) || !strings.Contains(err.Error(), want) {
				t.Fatalf("want a fatal error containing %q, got %v", want, err)
			}
			if e.exists(t, "good") || e.existsAs(t, "good", &corev1.Service{}) {
				t.Fatal("the valid object of the failed step was written")
			}
			if r.Status.Status != v1alpha1.StatusFatalError || r.Status.Phases[0].Steps[0].Status != v1alpha1.StatusFatalError {
				t.Fatalf("status tree not FATAL_ERROR: %+v", r.Status)
			}
		})
	}
}

func TestRenderErrorWritesNothing(t *testing.T) {
	e := newEnv(t, applier.Options{})
	pkg := pkgFromFiles(t, `tasks:
  - name: first
    kind: Apply
    spec:
      resources: [first.yaml]
  - name: second
    kind: Apply
    spec:
      resources: [second.yaml]
plans:
  deploy:
    phases:
      - name: main
        steps:
          - name: first
            tasks: [first]
          - name: second
            tasks: [second]
`, valueParam, map[string]string{"first.yaml": configMap("first"), "second.yaml": "{{ .Params.NOPE }}"})
	inst := e.instance(t, "render", pkg)
	_, err := e.engine.Render(context.Background(), run(inst, pkg, "deploy", nil))
	if !applier.IsFatal(err) || !strings.Contains(err.Error(), "templates/second.yaml") || !strings.Contains(err.Error(), "NOPE") {
		t.Fatalf("want a render error naming the template and the key, got %v", err)
	}
	if e.exists(t, "first") {
		t.Fatal("a step was written although a later template cannot render")
	}
}

const twoStepsAndPause = `tasks:
  - name: first
    kind: Apply
    spec:
      resources: [first.yaml]
  - name: pause
    kind: Dummy
  - name: second
    kind: Apply
    spec:
      resources: [second.yaml]
plans:
  deploy:
    phases:
      - name: main
        steps:
          - name: first
            tasks: [first]
          - name: pause
            tasks: [pause]
          - name: second
            tasks: [second]
`

func TestStepTimeoutIsFatalAndNamesWhatItWaitedFor(t *testing.T) {
	e := newEnv(t, applier.Options{})
	pkg := pkgFromFiles(t, `tasks:
  - name: app
    kind: Apply
    spec:
      resources: [deploy.yaml]
plans:
  deploy:
    phases:
      - name: main
        steps:
          - name: app
            tasks: [app]
`, valueParam, map[string]string{
		// No controllers run on envtest: this Deployment never becomes available.
		"deploy.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec:\n      containers: [{name: web, image: nginx}]\n",
	})
	inst := e.instance(t, "timeout", pkg)
	r := run(inst, pkg, "deploy", nil)
	r.StepTimeout = 2 * time.Second
	rp, err := e.engine.Render(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	err = e.engine.Execute(context.Background(), r, rp)
	if !applier.IsFatal(err) {
		t.Fatalf("want FATAL_ERROR, got %v", err)
	}
	for _, want := range []string{"timed out after 2s", "Deployment/" + e.namespace + "/web"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("the timeout took %s", d)
	}
	if msg := r.Status.Phases[0].Steps[0].Message; !strings.Contains(msg, "web") {
		t.Errorf("step message %q does not name the object", msg)
	}
}

type superseded struct{}

func (superseded) Error() string { return "superseded by abc1234" }

func TestWaitingStepIsInterruptedAtOnce(t *testing.T) {
	e := newEnv(t, applier.Options{StartRecordDelay: -1})
	pkg := pkgFromFiles(t, twoStepsAndPause, valueParam, map[string]string{"first.yaml": configMap("first"), "second.yaml": configMap("second")})
	inst := e.instance(t, "interrupt", pkg)
	r := run(inst, pkg, "deploy", nil)
	var mu sync.Mutex
	var persisted []v1alpha1.PlanStatus
	r.Persist = func(_ context.Context, s v1alpha1.PlanStatus, _ []v1alpha1.InventoryEntry) error {
		mu.Lock()
		defer mu.Unlock()
		persisted = append(persisted, s)
		return nil
	}
	pausing := func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := len(persisted)
		return n > 0 && persisted[n-1].Phases[0].Steps[0].Status == v1alpha1.StatusComplete && persisted[n-1].Phases[0].Steps[1].Status == v1alpha1.StatusInProgress
	}
	rp, err := e.engine.Render(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancelCause(context.Background())
	done := make(chan error)
	go func() { done <- e.engine.Execute(ctx, r, rp) }()
	// Wait until the first step is recorded complete and the pause in progress.
	deadline := time.Now().Add(30 * time.Second)
	for !pausing() {
		if time.Now().After(deadline) {
			t.Fatal("the first step never completed")
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel(superseded{})
	select {
	case err := <-done:
		if !errors.As(err, new(superseded)) {
			t.Fatalf("want the cancel cause, got %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the waiting step was not interrupted")
	}
	if e.exists(t, "second") {
		t.Fatal("a step after the interrupted one ran")
	}
	if got := persisted[0].Phases[0].Steps[0].Status; got != v1alpha1.StatusInProgress {
		t.Fatalf("the first step was not recorded in progress before it ran: %s", got)
	}
}

func TestResumeSkipsCompletedSteps(t *testing.T) {
	e := newEnv(t, applier.Options{})
	ops := strings.Replace(twoStepsAndPause, "  - name: pause\n    kind: Dummy\n", "  - name: pause\n    kind: Dummy\n    spec: {done: true}\n", 1)
	pkg := pkgFromFiles(t, ops, valueParam, map[string]string{"first.yaml": configMap("first"), "second.yaml": configMap("second")})
	inst := e.instance(t, "resume", pkg)
	r := run(inst, pkg, "deploy", nil)
	// As recorded by a daemon that stopped after the first two steps.
	r.Status.Phases[0].Status = v1alpha1.StatusInProgress
	r.Status.Phases[0].Steps[0].Status = v1alpha1.StatusComplete
	r.Status.Phases[0].Steps[1].Status = v1alpha1.StatusComplete
	rp, err := e.engine.Render(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.engine.Execute(context.Background(), r, rp); err != nil {
		t.Fatal(err)
	}
	if e.exists(t, "first") || !e.exists(t, "second") {
		t.Fatalf("resume re-ran a completed step or skipped the rest (first %v, second %v)", e.exists(t, "first"), e.exists(t, "second"))
	}
	if r.Status.Status != v1alpha1.StatusComplete {
		t.Fatalf("plan status %s", r.Status.Status)
	}
}

func TestToggleDeleteAndPrune(t *testing.T) {
	e := newEnv(t, applier.Options{})
	ops := `tasks:
  - name: app
    kind: Apply
    spec:
      resources: [always.yaml]
  - name: extra
    kind: Toggle
    spec:
      parameter: EXTRA
      resources: [extra.yaml]
  - name: remove
    kind: Delete
    spec:
      resources: [always.yaml]
plans:
  deploy:
    phases:
      - name: main
        steps:
          - name: app
            tasks: [app, extra]
  teardown:
    phases:
      - name: main
        steps:
          - name: remove
            tasks: [remove]
`
	pkg := pkgFromFiles(t, ops, valueParam, map[string]string{"always.yaml": configMap("always"), "extra.yaml": configMap("extra")})
	inst := e.instance(t, "toggle", pkg)
	ctx := context.Background()
	exec := func(plan string, params map[string]string, inv applier.Inventory) *applier.Run {
		t.Helper()
		r := run(inst, pkg, plan, params)
		r.Inventory = inv
		rp, err := e.engine.Render(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.engine.Execute(ctx, r, rp); err != nil {
			t.Fatal(err)
		}
		return r
	}
	r := exec("deploy", nil, applier.Inventory{})
	if !e.exists(t, "always") || !e.exists(t, "extra") || len(r.Inventory) != 2 {
		t.Fatalf("deploy: always %v extra %v inventory %v", e.exists(t, "always"), e.exists(t, "extra"), r.Inventory)
	}
	// EXTRA false: the Toggle deletes its object, and pruning keeps only what plans render.
	r = exec("deploy", map[string]string{"EXTRA": "false"}, r.Inventory)
	if e.exists(t, "extra") {
		t.Fatal("Toggle false did not delete its object")
	}
	keep, err := e.engine.Rendered(ctx, inst, pkg, map[string]string{"EXTRA": "false"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.engine.Prune(ctx, inst, r.Inventory, keep); err != nil {
		t.Fatal(err)
	}
	if !e.exists(t, "always") {
		t.Fatal("pruning deleted an object a plan still renders")
	}
	// A Delete task waits until the object is gone and drops it from the inventory.
	r = exec("teardown", map[string]string{"EXTRA": "false"}, r.Inventory)
	if e.exists(t, "always") {
		t.Fatal("Delete task left its object")
	}
	if len(r.Inventory) != 0 {
		t.Fatalf("inventory after deletes: %v", r.Inventory)
	}
}

func TestPruneDeletesWhatNoPlanRenders(t *testing.T) {
	e := newEnv(t, applier.Options{})
	ops := `tasks:
  - name: app
    kind: Apply
    spec:
      resources: [kept.yaml, dropped.yaml]
plans:
  deploy:
    phases:
      - name: main
        steps:
          - name: app
            tasks: [app]
`
	v1 := pkgFromFiles(t, ops, valueParam, map[string]string{"kept.yaml": configMap("kept"), "dropped.yaml": configMap("dropped")})
	inst := e.instance(t, "prune", v1)
	ctx := context.Background()
	r := run(inst, v1, "deploy", nil)
	rp, err := e.engine.Render(ctx, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.engine.Execute(ctx, r, rp); err != nil {
		t.Fatal(err)
	}
	// The template is dropped from the package: pruning deletes its object.
	v2 := pkgFromFiles(t, strings.Replace(ops, ", dropped.yaml", "", 1), valueParam, map[string]string{"kept.yaml": configMap("kept")})
	keep, err := e.engine.Rendered(ctx, inst, v2, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := e.engine.Prune(ctx, inst, r.Inventory, keep)
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 1 || deleted[0].GetName() != "dropped" || e.exists(t, "dropped") || !e.exists(t, "kept") {
		t.Fatalf("deleted %v; dropped exists %v; kept exists %v", deleted, e.exists(t, "dropped"), e.exists(t, "kept"))
	}
}
