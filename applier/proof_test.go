package applier_test

import (
	"context"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/test/testenv"
)

// TestPackagesApply is the foundation's proof on a real API server: the test packages render
// with defaults, retired API versions (a policy/v1beta1 PodDisruptionBudget, RBAC v1beta1, an
// apps/v1beta2 Deployment, an apiextensions.k8s.io/v1beta1 CRD) are upgraded against the
// server's discovery with a warning each, every object is server-side applied and reads back
// with kudod's labels in the instance's namespace.
func TestPackagesApply(t *testing.T) {
	packagesApply(t, testenv.FixtureOperatorsDir(t), map[string][]string{
		"hello/1.0.0":         nil,
		"greeter/1.0.0":       nil,
		"quorum/1.37.0-0.2.0": {"PodDisruptionBudget"},
		"quorum/1.36.1-0.1.0": {"PodDisruptionBudget"},
		"broker/1.1.0":        {"PodDisruptionBudget", "RoleBinding", "Role"},
		"legacy/1.0.0":        {"CustomResourceDefinition", "Role", "RoleBinding", "PodDisruptionBudget", "Deployment", "StatefulSet"},
	})
}

// TestCatalogPackagesApply does the same with first-operator, zookeeper (its policy/v1beta1
// PodDisruptionBudget) and kafka.
func TestCatalogPackagesApply(t *testing.T) {
	packagesApply(t, testenv.CatalogDir(t), map[string][]string{
		"first-operator/0.2.0":   nil,
		"zookeeper/3.6.2-0.3.3":  {"PodDisruptionBudget"},
		"zookeeper/3.4.14-0.3.1": {"PodDisruptionBudget"},
		"kafka/2.5.1-1.3.2":      {"PodDisruptionBudget"},
	})
}

// packagesApply applies the deploy plan's objects of each package under root (<name>/<version>)
// and expects an upgrade warning for each kind listed.
func packagesApply(t *testing.T, root string, upgraded map[string][]string) {
	e := newEnv(t, applier.Options{})
	for _, dir := range slices.Sorted(maps.Keys(upgraded)) {
		t.Run(dir, func(t *testing.T) {
			pkg := load(t, filepath.Join(root, dir))
			name := strings.ReplaceAll(strings.ToLower(pkg.Name), "_", "-") + "-" + strings.ReplaceAll(pkg.OperatorVersion, ".", "")
			inst := e.instance(t, name, pkg)
			r := run(inst, pkg, "deploy", nil)
			rp, err := e.engine.Render(context.Background(), r)
			if err != nil {
				t.Fatalf("render: %v", err)
			}
			objs := rp.Objects()
			if len(objs) == 0 {
				t.Fatal("nothing rendered")
			}
			for _, kind := range upgraded[dir] {
				if !strings.Contains(strings.Join(rp.Warnings, "\n"), kind+"/") {
					t.Errorf("expected a warning for the upgraded %s, got %q", kind, rp.Warnings)
				}
			}
			if err := e.engine.ApplyObjects(context.Background(), objs); err != nil {
				t.Fatalf("apply: %v", err)
			}
			for _, o := range objs {
				live := &unstructured.Unstructured{}
				live.SetGroupVersionKind(o.GroupVersionKind())
				if err := e.cluster.Client.Get(context.Background(), client.ObjectKeyFromObject(o), live); err != nil {
					t.Fatalf("read back %s %s: %v", o.GetKind(), o.GetName(), err)
				}
				if live.GetNamespace() != "" && live.GetNamespace() != e.namespace {
					t.Errorf("%s/%s is in namespace %s, not the instance's", o.GetKind(), o.GetName(), live.GetNamespace())
				}
				l := live.GetLabels()
				if l["kudo.dev/instance"] != inst.Name || l["kudo.dev/operator"] != pkg.Name || l["heritage"] != "kudo" {
					t.Errorf("%s/%s lacks KUDO's labels: %v", o.GetKind(), o.GetName(), l)
				}
				if strings.Contains(live.GetAPIVersion(), "beta") {
					t.Errorf("%s/%s read back as %s", o.GetKind(), o.GetName(), live.GetAPIVersion())
				}
			}
		})
	}
}
