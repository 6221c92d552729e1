package applier_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/manifests"
)

// fixture loads a package of the repository's testdata/operators.
func fixture(t *testing.T, name, version string) *manifests.Package {
	t.Helper()
	return load(t, filepath.Join("..", "testdata", "operators", name, version))
}

// execute renders and runs a plan to its end.
func (e *env) execute(t *testing.T, r *applier.Run) error {
	t.Helper()
	rp, err := e.engine.Render(context.Background(), r)
	if err != nil {
		return err
	}
	return e.engine.Execute(context.Background(), r, rp)
}

// A v1beta1 CRD in a protected group, refused by a v1 API server without the annotation
// api-approved.kubernetes.io ("Required value"), deploys once kudod's upgrade adds it.
func TestProtectedGroupCRDDeploys(t *testing.T) {
	e := newEnv(t, applier.Options{})
	pkg := fixture(t, "protected-crd", "0.1.0")
	inst := e.instance(t, "protected", pkg)
	r := run(inst, pkg, "deploy", nil)
	rp, err := e.engine.Render(context.Background(), r)
	if err != nil {
		t.Fatal(err)
	}
	if w := strings.Join(rp.Warnings, "\n"); !strings.Contains(w, "templates/crd.yaml: CustomResourceDefinition/fixturesnapshots.fixtures.k8s.io upgraded") || !strings.Contains(w, "api-approved.kubernetes.io") {
		t.Errorf("warnings do not name the upgrade and the annotation: %q", rp.Warnings)
	}
	if err := e.engine.Execute(context.Background(), r, rp); err != nil {
		t.Fatalf("deploy: %v", err)
	}
	crd := &apiextensionsv1.CustomResourceDefinition{}
	if err := e.cluster.Client.Get(context.Background(), types.NamespacedName{Name: "fixturesnapshots.fixtures.k8s.io"}, crd); err != nil {
		t.Fatal(err)
	}
	if v := crd.Annotations["api-approved.kubernetes.io"]; !strings.HasPrefix(v, "unapproved, ") {
		t.Errorf("annotation %q", v)
	}
	snap := &unstructured.Unstructured{}
	snap.SetAPIVersion("fixtures.k8s.io/v1alpha1")
	snap.SetKind("FixtureSnapshot")
	if err := e.cluster.Client.Get(context.Background(), types.NamespacedName{Namespace: e.namespace, Name: "protected-first"}, snap); err != nil {
		t.Fatalf("the custom resource of the upgraded CRD: %v", err)
	}
}

// A package whose optional objects are of a kind the cluster does not serve (a ServiceMonitor
// without the Prometheus operator) deploys with its defaults: a Toggle that is off, a Delete
// task and pruning have nothing to delete. Turning the Toggle on fails, naming the kind.
func TestOptionalKindsTheClusterDoesNotServe(t *testing.T) {
	e := newEnv(t, applier.Options{})
	pkg := fixture(t, "optional-monitoring", "0.1.0")
	inst := e.instance(t, "monitored", pkg)
	ctx := context.Background()

	r := run(inst, pkg, "deploy", nil)
	if err := e.execute(t, r); err != nil {
		t.Fatalf("deploy with the defaults: %v", err)
	}
	if r.Status.Status != v1alpha1.StatusComplete || !e.exists(t, "monitored-config") {
		t.Fatalf("deploy %s, ConfigMap exists %v", r.Status.Status, e.exists(t, "monitored-config"))
	}
	for id := range r.Inventory {
		if strings.Contains(id, "ServiceMonitor") {
			t.Errorf("inventory holds %s", id)
		}
	}

	// An inventory entry of a kind the cluster no longer serves: pruning finds it gone.
	inv := applier.NewInventory(r.Inventory.Entries())
	inv[e.namespace+"_monitored-monitor_monitoring.coreos.com_ServiceMonitor"] = "v1"
	keep, err := e.engine.Rendered(ctx, inst, pkg, nil, nil)
	if err != nil {
		t.Fatalf("what pruning keeps: %v", err)
	}
	deleted, err := e.engine.Prune(ctx, inst, inv, keep)
	if err != nil {
		t.Fatalf("prune: %v", err)
	}
	if len(deleted) != 1 || deleted[0].GetKind() != "ServiceMonitor" || !e.exists(t, "monitored-config") {
		t.Fatalf("pruned %v", deleted)
	}

	r = run(inst, pkg, "remove-monitoring", nil)
	r.Inventory = applier.NewInventory(inv.Entries())
	if err := e.execute(t, r); err != nil {
		t.Fatalf("a Delete task of a kind the cluster does not serve: %v", err)
	}

	r = run(inst, pkg, "deploy", map[string]string{"METRICS_ENABLED": "true"})
	_, err = e.engine.Render(ctx, r)
	if !applier.IsFatal(err) {
		t.Fatalf("turning monitoring on: want a fatal error, got %v", err)
	}
	for _, w := range []string{"task monitoring", "templates/servicemonitor.yaml", "does not serve monitoring.coreos.com/v1 ServiceMonitor"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
}
