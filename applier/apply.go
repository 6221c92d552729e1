package applier

import (
	"context"
	"fmt"
	"sort"
	"time"

	"github.com/fluxcd/pkg/ssa"
	ssaerrors "github.com/fluxcd/pkg/ssa/errors"
	"github.com/fluxcd/pkg/ssa/normalize"
	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// applyOptions are the server-side apply options of every write: kudod's field manager
// takes over fields it renders (ForceOwnership, as Flux does); objects whose immutable fields
// changed are not recreated behind the user's back.
func applyOptions() ssa.ApplyOptions {
	o := ssa.DefaultApplyOptions()
	o.WaitInterval = 500 * time.Millisecond
	o.WaitTimeout = time.Minute
	// Roles before the rest: without the bind verb, the API server lets kudod create a
	// RoleBinding only once the Role it binds exists (fluxcd/kustomize-controller#1571).
	o.CustomStageKinds = map[schema.GroupKind]struct{}{{Group: "rbac.authorization.k8s.io", Kind: "Role"}: {}}
	return o
}

// apply validates every object by server-side dry-run and then applies them, staged as Flux
// stages them: CRDs and Namespaces first (and waited for), then the rest. If any dry-run of a
// stage fails, nothing of that stage is written. Objects of later stages whose kinds the
// cluster already serves are dry-run before the first stage is written, so a step with a bad
// object writes nothing. known are the objects kudod applied before (the inventory): a step of
// objects it never applied takes a shorter path (see applyNew).
func (e *Engine) apply(ctx context.Context, objs []*unstructured.Unstructured, known Inventory) error {
	objs = cloneAll(objs)
	var defs, rest []*unstructured.Unstructured
	fresh := true
	for _, o := range objs {
		if isDefinition(o) {
			defs = append(defs, o)
		} else {
			rest = append(rest, o)
		}
		if _, ok := known[inventoryID(o)]; ok {
			fresh = false
		}
	}
	if fresh && len(defs) == 0 {
		return e.applyNew(ctx, objs)
	}
	// ssa compares live objects with dry-run results: both sides need the API server's
	// defaults filled in the same way (normalize), or every object looks drifted.
	if err := normalize.UnstructuredList(objs); err != nil {
		return fatal(fmt.Errorf("normalize objects: %w", err))
	}
	if len(defs) > 0 {
		if err := e.dryRun(ctx, withoutBindingsOfNewRoles(rest, objs)); err != nil {
			return err
		}
	}
	if _, err := e.resources.ApplyAllStaged(ctx, objs, applyOptions()); err != nil {
		return classify(err)
	}
	return nil
}

// applyNew applies objects kudod never applied (a first deploy, or a task new in the plan):
// there is no live state worth reading first, so instead of ssa's GET, dry-run and apply per
// object it dry-runs all but the first object and then applies them in order. The first one
// needs no dry-run: if its apply fails nothing of the step has been written yet. The step stays
// all or nothing, with 2N-1 requests instead of 3N.
func (e *Engine) applyNew(ctx context.Context, objs []*unstructured.Unstructured) error {
	sort.Sort(ssa.SortableUnstructureds(objs))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(e.opts.Concurrency)
	for _, o := range withoutBindingsOfNewRoles(objs[1:], objs) {
		g.Go(func() error {
			if err := e.dryRunNew(gctx, o); err != nil {
				return classify(ssaerrors.NewDryRunErr(err, o))
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for _, o := range objs {
		if err := ServerSideApply(ctx, e.client, o); err != nil {
			return classify(fmt.Errorf("%s apply failed: %w", objectRef(o), ssaerrors.NewDryRunErr(err, o)))
		}
	}
	return nil
}

// dryRunNew validates an object kudod never applied with a dry-run create, which costs the API
// server less than a dry-run apply (no managed-fields merge against a live object); when the
// object exists after all it falls back to a dry-run apply. The create is strict: by default
// a create only warns about a field the kind does not have, where the apply that follows
// refuses it, after the step's first object was written.
func (e *Engine) dryRunNew(ctx context.Context, o *unstructured.Unstructured) error {
	err := e.client.Create(ctx, o.DeepCopy(), client.DryRunAll, client.FieldOwner(v1alpha1.FieldManager), client.FieldValidation(metav1.FieldValidationStrict))
	if apierrors.IsAlreadyExists(err) {
		err = ServerSideApply(ctx, e.client, o, client.DryRunAll)
	}
	return err
}

// withoutBindingsOfNewRoles leaves out of rest the bindings of roles among objs: the API
// server refuses a binding of a role that does not exist yet to anyone without the bind verb,
// so such a binding is validated when it is applied, after its role (the one exception to a
// step writing nothing when an object is invalid, as for custom resources of a new CRD).
func withoutBindingsOfNewRoles(rest, objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	roles := map[string]bool{}
	for _, o := range objs {
		if k := o.GetKind(); o.GroupVersionKind().Group == "rbac.authorization.k8s.io" && (k == "Role" || k == "ClusterRole") {
			roles[k+"/"+o.GetNamespace()+"/"+o.GetName()] = true
		}
	}
	var out []*unstructured.Unstructured
	for _, o := range rest {
		if k := o.GetKind(); o.GroupVersionKind().Group == "rbac.authorization.k8s.io" && (k == "RoleBinding" || k == "ClusterRoleBinding") {
			kind, _, _ := unstructured.NestedString(o.Object, "roleRef", "kind")
			name, _, _ := unstructured.NestedString(o.Object, "roleRef", "name")
			ns := o.GetNamespace()
			if kind == "ClusterRole" {
				ns = ""
			}
			if roles[kind+"/"+ns+"/"+name] {
				continue
			}
		}
		out = append(out, o)
	}
	return out
}

// isDefinition reports objects ssa applies in its first stage.
func isDefinition(o *unstructured.Unstructured) bool {
	gk := o.GroupVersionKind().GroupKind()
	return gk == schema.GroupKind{Group: "apiextensions.k8s.io", Kind: "CustomResourceDefinition"} ||
		gk == schema.GroupKind{Kind: "Namespace"} ||
		gk == schema.GroupKind{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}
}

// dryRun validates objects whose kinds the cluster already serves.
func (e *Engine) dryRun(ctx context.Context, objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		if _, err := e.mapper.RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version); err != nil {
			continue // defined by a CRD of this step: validated once that exists
		}
		if err := ServerSideApply(ctx, e.client, o, client.DryRunAll); err != nil {
			return classify(ssaerrors.NewDryRunErr(err, o))
		}
	}
	return nil
}

func cloneAll(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o.DeepCopy()
	}
	return out
}

// ApplyObjects server-side applies prepared objects as a step would (dry-run first, staged),
// reading each object first (the ssa path) since they may exist.
func (e *Engine) ApplyObjects(ctx context.Context, objs []*unstructured.Unstructured) error {
	return e.apply(ctx, objs, Inventory{"*": ""})
}
