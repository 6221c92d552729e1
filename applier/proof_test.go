package applier_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/applier"
)

// TestRealPackagesApply is the foundation's proof on a real API server: first-operator and
// zookeeper render with defaults, retired API versions (zookeeper's policy/v1beta1
// PodDisruptionBudget) are upgraded against the server's discovery, every object is
// server-side applied and reads back with kudod's labels in the instance's namespace.
func TestRealPackagesApply(t *testing.T) {
	e := newEnv(t, applier.Options{})
	for _, dir := range []string{"first-operator/0.2.0", "zookeeper/3.6.2-0.3.3", "zookeeper/3.4.14-0.3.1", "kafka/2.5.1-1.3.2"} {
		t.Run(dir, func(t *testing.T) {
			pkg := load(t, filepath.Join(operators, dir))
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
			if strings.HasPrefix(dir, "zookeeper") || strings.HasPrefix(dir, "kafka") {
				if !strings.Contains(strings.Join(rp.Warnings, "\n"), "PodDisruptionBudget") {
					t.Errorf("expected a warning for the upgraded PodDisruptionBudget, got %q", rp.Warnings)
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
				if o.GetKind() == "PodDisruptionBudget" && live.GetAPIVersion() != "policy/v1" {
					t.Errorf("PodDisruptionBudget read back as %s", live.GetAPIVersion())
				}
			}
		})
	}
}
