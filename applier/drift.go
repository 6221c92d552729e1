package applier

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sort"

	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/normalize"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
)

// Drifted is an object whose live state differs from what kudod applied.
type Drifted struct {
	Object *unstructured.Unstructured
	// Action is ssa's: created (deleted by hand) or configured (edited).
	Action ssa.Action
}

func (d Drifted) String() string { return objectRef(d.Object) + " " + string(d.Action) }

// Desired renders what an instance's completed plans applied: for each object of the inventory,
// the render of the most recent completed plan that applies it (Apply tasks, Toggle tasks that
// are on), with the instance's current parameters. Objects a plan deleted are not in the
// inventory, so a backup Job that its plan removed is not brought back.
func (e *Engine) Desired(ctx context.Context, inst *v1alpha1.Instance, pkg *manifests.Package, params map[string]string, children PackageFinder) ([]*unstructured.Unstructured, error) {
	inv := NewInventory(inst.Status.Inventory)
	plans := completedPlans(inst, pkg)
	desired := map[string]*unstructured.Unstructured{}
	for _, name := range plans {
		rp, err := e.Render(ctx, &Run{Instance: inst, Package: pkg, Plan: name, Params: params, Children: children})
		if err != nil {
			return nil, fmt.Errorf("render plan %s: %w", name, err)
		}
		for _, o := range rp.Objects() {
			id := inventoryID(o)
			if _, applied := inv[id]; applied {
				desired[id] = o
			}
		}
	}
	ids := slices.Sorted(maps.Keys(desired))
	out := make([]*unstructured.Unstructured, 0, len(ids))
	for _, id := range ids {
		out = append(out, desired[id])
	}
	return out, nil
}

// completedPlans lists the package's plans that completed on this instance, oldest first, so
// later renders override earlier ones.
func completedPlans(inst *v1alpha1.Instance, pkg *manifests.Package) []string {
	type done struct {
		name string
		at   int64
	}
	var ds []done
	for _, ps := range inst.Status.Plans {
		if ps.Status != v1alpha1.StatusComplete || !pkg.HasPlan(ps.Name) {
			continue
		}
		var at int64
		if ps.LastUpdated != nil {
			at = ps.LastUpdated.UnixNano()
		}
		ds = append(ds, done{ps.Name, at})
	}
	sort.SliceStable(ds, func(i, j int) bool { return ds[i].at < ds[j].at })
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		out = append(out, d.name)
	}
	return out
}

// Drift compares live objects with the desired ones by server-side dry-run (ssa's Diff): an
// object someone edited, or deleted, has drifted; a field kudod does not set (another
// manager's) never counts.
func (e *Engine) Drift(ctx context.Context, desired []*unstructured.Unstructured) ([]Drifted, error) {
	objs := cloneAll(desired)
	if err := normalize.UnstructuredList(objs); err != nil {
		return nil, err
	}
	var out []Drifted
	for _, o := range objs {
		entry, _, _, err := e.resources.Diff(ctx, o, ssa.DefaultDiffOptions())
		if err != nil {
			return nil, fmt.Errorf("compare %s: %w", objectRef(o), err)
		}
		if entry.Action == ssa.CreatedAction || entry.Action == ssa.ConfiguredAction {
			out = append(out, Drifted{Object: o, Action: entry.Action})
		}
	}
	return out, nil
}
