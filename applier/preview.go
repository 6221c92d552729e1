package applier

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/fluxcd/pkg/ssa"
	"github.com/fluxcd/pkg/ssa/normalize"
	"github.com/pmezard/go-difflib/difflib"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"
)

// What a preview says would happen to an object.
const (
	ChangeCreated    = "created"
	ChangeConfigured = "configured"
	ChangeUnchanged  = "unchanged"
	ChangeDeleted    = "deleted"
	ChangePruned     = "pruned"
)

// ObjectChange is what running a plan would do to one object.
type ObjectChange struct {
	// Object is Kind/namespace/name.
	Object string
	// Action is created, configured, unchanged, deleted or pruned.
	Action string
	// Diff is a unified diff of the live object and the object after the plan (configured).
	Diff string
	// Note explains a change that could not be dry-run (its namespace or CRD does not exist yet).
	Note string
}

// Preview says what running a plan would do, without writing anything: every object the plan
// applies is dry-run with server-side apply (created, configured with a diff, unchanged),
// every object it deletes is looked up, and the objects pruning would delete afterwards are
// listed. Only GET and dryRun=All requests reach the cluster (docs/design.md, Previews).
func (e *Engine) Preview(ctx context.Context, run *Run) ([]ObjectChange, error) {
	rp, err := e.Render(ctx, run)
	if err != nil {
		return nil, err
	}
	pv := rp.preview(run.Instance.Namespace)
	secrets := newSecretHasher()
	var out []ObjectChange
	for _, entry := range pv.order {
		if entry.change != nil {
			out = append(out, *entry.change)
			continue
		}
		o, ok := pv.applied[entry.id]
		if !ok {
			continue // a later task deletes it
		}
		c, err := e.previewApply(ctx, secrets, o)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	for _, id := range sortedIDs(pv.deleted) {
		o := pv.deleted[id]
		if e.exists(ctx, o) {
			out = append(out, ObjectChange{Object: objectRef(o), Action: ChangeDeleted})
		}
	}
	keep, err := e.Rendered(ctx, run.Instance, run.Package, run.Params, run.Children)
	if err != nil {
		return nil, err
	}
	stale, err := run.Inventory.Without(keep).Objects()
	if err != nil {
		return nil, err
	}
	for _, o := range stale {
		if _, gone := pv.deleted[inventoryID(o)]; !gone && e.exists(ctx, o) {
			out = append(out, ObjectChange{Object: objectRef(o), Action: ChangePruned})
		}
	}
	return out, nil
}

// planPreview collects what a plan's tasks would do, in plan order: the last task to apply or
// delete an object decides what happens to it.
type planPreview struct {
	// namespace is the instance's.
	namespace string
	order     []previewEntry
	applied   map[string]*unstructured.Unstructured
	deleted   map[string]*unstructured.Unstructured
	// listed are the objects in order.
	listed map[string]bool
}

// preview asks every task, in plan order, what it would do.
func (rp *RenderedPlan) preview(namespace string) *planPreview {
	pv := &planPreview{namespace: namespace, applied: map[string]*unstructured.Unstructured{}, deleted: map[string]*unstructured.Unstructured{}, listed: map[string]bool{}}
	rp.eachStep(func(rs *renderedStep) {
		for _, t := range rs.tasks {
			t.preview(pv)
		}
	})
	return pv
}

// previewEntry is an object the plan applies (by inventory ID), or a change known without
// asking the cluster.
type previewEntry struct {
	id     string
	change *ObjectChange
}

// apply records objects the plan applies; they are dry-run when the preview is made.
func (pv *planPreview) apply(objs ...*unstructured.Unstructured) {
	for _, o := range objs {
		id := inventoryID(o)
		if !pv.listed[id] {
			pv.listed[id] = true
			pv.order = append(pv.order, previewEntry{id: id})
		}
		pv.applied[id] = o
		delete(pv.deleted, id)
	}
}

// delete records objects the plan deletes; those that exist are listed as deleted.
func (pv *planPreview) delete(objs ...*unstructured.Unstructured) {
	for _, o := range objs {
		id := inventoryID(o)
		pv.deleted[id] = o
		delete(pv.applied, id)
	}
}

// add records a change the cluster cannot dry-run (a pipe's artifact, a child instance).
func (pv *planPreview) add(c ObjectChange) {
	pv.order = append(pv.order, previewEntry{change: &c})
}

// PreviewDeletion lists what removing an instance would delete: every object of its inventory
// that still exists.
func (e *Engine) PreviewDeletion(ctx context.Context, inv Inventory) ([]ObjectChange, error) {
	objs, err := inv.Objects()
	if err != nil {
		return nil, err
	}
	var out []ObjectChange
	for _, o := range objs {
		if e.exists(ctx, o) {
			out = append(out, ObjectChange{Object: objectRef(o), Action: ChangeDeleted})
		}
	}
	return out, nil
}

func (e *Engine) exists(ctx context.Context, o *unstructured.Unstructured) bool {
	live := &unstructured.Unstructured{}
	live.SetGroupVersionKind(o.GroupVersionKind())
	return e.client.Get(ctx, client.ObjectKeyFromObject(o), live) == nil
}

// previewApply dry-runs one object with server-side apply and describes the change.
func (e *Engine) previewApply(ctx context.Context, secrets secretHasher, obj *unstructured.Unstructured) (ObjectChange, error) {
	o := obj.DeepCopy()
	if err := normalize.Unstructured(o); err != nil {
		return ObjectChange{}, err
	}
	ref := objectRef(o)
	entry, live, merged, err := e.resources.Diff(ctx, o, ssa.DefaultDiffOptions())
	if err != nil {
		switch {
		case meta.IsNoMatchError(err) || strings.Contains(err.Error(), "no matches for kind"):
			return ObjectChange{Object: ref, Action: ChangeCreated, Note: "its kind is defined by a CRD the plan creates"}, nil
		case apierrors.IsNotFound(err) && o.GetNamespace() != "":
			return ObjectChange{Object: ref, Action: ChangeCreated, Note: "namespace " + o.GetNamespace() + " is created first"}, nil
		}
		return ObjectChange{}, fmt.Errorf("%s: %w", ref, classify(err))
	}
	switch entry.Action {
	case ssa.CreatedAction:
		return ObjectChange{Object: ref, Action: ChangeCreated}, nil
	case ssa.ConfiguredAction:
		if isSecret(o) {
			// Secrets are diffed by key name and a hash of each value only.
			live, merged = e.secretDiffObjects(ctx, secrets, o, live, merged)
		}
		diff, err := unifiedDiff(live, merged)
		if err != nil {
			return ObjectChange{}, err
		}
		return ObjectChange{Object: ref, Action: ChangeConfigured, Diff: diff}, nil
	default:
		return ObjectChange{Object: ref, Action: ChangeUnchanged}, nil
	}
}

// unifiedDiff shows how an object changes, without the fields the API server manages.
func unifiedDiff(live, merged *unstructured.Unstructured) (string, error) {
	a, err := displayYAML(live)
	if err != nil {
		return "", err
	}
	b, err := displayYAML(merged)
	if err != nil {
		return "", err
	}
	return difflib.GetUnifiedDiffString(difflib.UnifiedDiff{
		A: difflib.SplitLines(a), B: difflib.SplitLines(b), FromFile: "live", ToFile: "after the plan", Context: 3,
	})
}

func displayYAML(o *unstructured.Unstructured) (string, error) {
	if o == nil {
		return "", nil
	}
	c := o.DeepCopy()
	unstructured.RemoveNestedField(c.Object, "status")
	for _, f := range []string{"managedFields", "resourceVersion", "generation", "uid", "creationTimestamp"} {
		unstructured.RemoveNestedField(c.Object, "metadata", f)
	}
	// kubectl's copy of the object as last applied repeats it, values included.
	unstructured.RemoveNestedField(c.Object, "metadata", "annotations", lastApplied)
	if ann, found, _ := unstructured.NestedMap(c.Object, "metadata", "annotations"); found && len(ann) == 0 {
		unstructured.RemoveNestedField(c.Object, "metadata", "annotations")
	}
	out, err := sigsyaml.Marshal(c.Object)
	return string(out), err
}

func sortedIDs(m map[string]*unstructured.Unstructured) []string {
	ids := slices.Sorted(maps.Keys(m))
	return ids
}
