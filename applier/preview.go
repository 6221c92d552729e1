package applier

import (
	"context"
	"fmt"
	"sort"
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
// listed. Only GET and dryRun=All requests reach the cluster.
func (e *Engine) Preview(ctx context.Context, run *Run) ([]ObjectChange, error) {
	rp, err := e.Render(ctx, run)
	if err != nil {
		return nil, err
	}
	applied := map[string]*unstructured.Unstructured{}
	var order []string
	deleted := map[string]*unstructured.Unstructured{}
	for _, ph := range rp.Plan.Phases {
		for _, st := range ph.Steps {
			for _, t := range rp.step(ph.Name, st.Name).tasks {
				for _, o := range t.apply {
					id := inventoryID(o)
					if _, seen := applied[id]; !seen {
						order = append(order, id)
					}
					applied[id] = o
					delete(deleted, id)
				}
				for _, o := range t.delete {
					id := inventoryID(o)
					deleted[id] = o
					delete(applied, id)
				}
				if t.pipe != nil {
					for _, a := range t.pipe.artifacts {
						order = append(order, "pipe:"+a.Kind+"/"+run.Instance.Namespace+"/"+a.name)
					}
				}
				if t.child != nil {
					order = append(order, "child:"+t.child.name)
				}
			}
		}
	}
	var out []ObjectChange
	for _, id := range order {
		switch {
		case strings.HasPrefix(id, "pipe:"):
			out = append(out, ObjectChange{Object: strings.TrimPrefix(id, "pipe:"), Action: ChangeCreated, Note: "written by a Pipe task from a file its pod makes"})
		case strings.HasPrefix(id, "child:"):
			out = append(out, ObjectChange{Object: "Instance/" + run.Instance.Namespace + "/" + strings.TrimPrefix(id, "child:"), Action: ChangeConfigured, Note: "a child instance (KudoOperator task): its own plan runs"})
		default:
			o, ok := applied[id]
			if !ok {
				continue
			}
			c, err := e.previewApply(ctx, o)
			if err != nil {
				return nil, err
			}
			out = append(out, c)
		}
	}
	ids := sortedIDs(deleted)
	for _, id := range ids {
		o := deleted[id]
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
		if _, gone := deleted[inventoryID(o)]; !gone && e.exists(ctx, o) {
			out = append(out, ObjectChange{Object: objectRef(o), Action: ChangePruned})
		}
	}
	return out, nil
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
func (e *Engine) previewApply(ctx context.Context, obj *unstructured.Unstructured) (ObjectChange, error) {
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
	out, err := sigsyaml.Marshal(c.Object)
	return string(out), err
}

func sortedIDs(m map[string]*unstructured.Unstructured) []string {
	ids := make([]string, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
