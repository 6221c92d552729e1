package applier

import (
	"context"
	"fmt"

	"github.com/fluxcd/pkg/ssa"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
)

// Inventory is everything the plan records in an instance's inventory when it runs: the
// objects of its Apply tasks and Toggle tasks that are on, its Pipe artifacts and children.
func (rp *RenderedPlan) Inventory(namespace string) Inventory {
	inv := Inventory{}
	for _, rs := range rp.steps {
		for _, t := range rs.tasks {
			inv.Add(t.apply...)
			if t.pipe != nil {
				for _, a := range t.pipe.artifacts {
					inv.Add(pipeArtifactObject(a, namespace))
				}
			}
			if t.child != nil {
				inv.Add(childObject(t.child.name, namespace))
			}
		}
	}
	return inv
}

func pipeArtifactObject(a pipeArtifact, namespace string) *unstructured.Unstructured {
	o := &unstructured.Unstructured{}
	o.SetAPIVersion("v1")
	o.SetKind(a.Kind)
	o.SetNamespace(namespace)
	o.SetName(a.name)
	return o
}

func childObject(name, namespace string) *unstructured.Unstructured {
	o := &unstructured.Unstructured{}
	o.SetAPIVersion(v1alpha1.GroupVersion.String())
	o.SetKind("Instance")
	o.SetNamespace(namespace)
	o.SetName(name)
	return o
}

// Rendered returns the inventory of everything an instance's package renders now: the objects
// of every Apply task and every Toggle task whose parameter is true, in every plan, with the
// instance's current parameters; the artifacts of every Pipe task; the child of every
// KudoOperator task. Inventory objects outside it are what pruning deletes (SPEC §3).
func (e *Engine) Rendered(ctx context.Context, inst *v1alpha1.Instance, pkg *manifests.Package, params map[string]string, children PackageFinder) (Inventory, error) {
	keep := Inventory{}
	for _, name := range pkg.PlanNames() {
		rp, err := e.Render(ctx, &Run{Instance: inst, Package: pkg, Plan: name, Params: params, Children: children})
		if err != nil {
			return nil, fmt.Errorf("render plan %s: %w", name, err)
		}
		for id, v := range rp.Inventory(inst.Namespace) {
			keep[id] = v
		}
	}
	return keep, nil
}

// Prune deletes the objects of inv that are not in keep and still carry the instance's label
// (an object someone else took over is left alone). It returns what it deleted.
func (e *Engine) Prune(ctx context.Context, inst *v1alpha1.Instance, inv, keep Inventory) ([]*unstructured.Unstructured, error) {
	stale, err := inv.Without(keep).Objects()
	if err != nil {
		return nil, fatal(err)
	}
	return e.DeleteObjects(ctx, inst, stale)
}

// DeleteObjects deletes objects of an instance (in reverse apply order, as ssa does) that still
// carry its label, and returns them.
func (e *Engine) DeleteObjects(ctx context.Context, inst *v1alpha1.Instance, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	if len(objs) == 0 {
		return nil, nil
	}
	_, err := e.resources.DeleteAll(ctx, objs, ssa.DeleteOptions{
		PropagationPolicy: metav1.DeletePropagationBackground,
		Inclusions:        map[string]string{LabelInstance: inst.Name},
	})
	if err != nil {
		return nil, classify(fmt.Errorf("prune: %w", err))
	}
	return objs, nil
}
