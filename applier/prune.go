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
		for _, rs := range rp.steps {
			for _, t := range rs.tasks {
				keep.Add(t.apply...)
				if t.pipe != nil {
					for _, a := range t.pipe.artifacts {
						o := &unstructured.Unstructured{}
						o.SetAPIVersion("v1")
						o.SetKind(a.Kind)
						o.SetNamespace(inst.Namespace)
						o.SetName(a.name)
						keep.Add(o)
					}
				}
				if t.child != nil {
					o := &unstructured.Unstructured{}
					o.SetAPIVersion(v1alpha1.GroupVersion.String())
					o.SetKind("Instance")
					o.SetNamespace(inst.Namespace)
					o.SetName(t.child.name)
					keep.Add(o)
				}
			}
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
