package applier

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
)

// Rendered returns the inventory of everything an instance's package renders now: the objects
// of every Apply task and every Toggle task whose parameter is true, in every plan, with the
// instance's current parameters; the artifacts of every Pipe task; the child of every
// KudoOperator task. Inventory objects outside it are what pruning deletes (docs/design.md,
// Pruning). An object of a kind the cluster does not serve cannot exist, so it is left out.
func (e *Engine) Rendered(ctx context.Context, inst *v1alpha1.Instance, pkg *manifests.Package, params map[string]string, children PackageFinder) (Inventory, error) {
	keep := Inventory{}
	for _, name := range pkg.PlanNames() {
		rp, err := e.render(ctx, &Run{Instance: inst, Package: pkg, Plan: name, Params: params, Children: children}, true)
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
