package applier

import (
	"context"
	"fmt"

	"github.com/fluxcd/pkg/ssa"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// delete removes objects (background propagation) that the cluster serves; kinds it does not
// serve are skipped, as KUDO skips them.
func (e *Engine) delete(ctx context.Context, objs []*unstructured.Unstructured) error {
	for _, o := range objs {
		if _, err := e.mapper.RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version); meta.IsNoMatchError(err) {
			continue
		}
		d := &unstructured.Unstructured{}
		d.SetGroupVersionKind(o.GroupVersionKind())
		d.SetNamespace(o.GetNamespace())
		d.SetName(o.GetName())
		if err := e.client.Delete(ctx, d, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil && !apierrors.IsNotFound(err) {
			return classify(fmt.Errorf("delete %s: %w", objectRef(o), err))
		}
	}
	return nil
}

// waitDeleted waits until every object is gone, as KUDO's Delete task does.
func (e *Engine) waitDeleted(ctx context.Context, objs []*unstructured.Unstructured) error {
	pending := cloneAll(objs)
	return e.poll(ctx, func(ctx context.Context) (bool, string, error) {
		var still []*unstructured.Unstructured
		for _, o := range pending {
			if _, err := e.mapper.RESTMapping(o.GroupVersionKind().GroupKind(), o.GroupVersionKind().Version); meta.IsNoMatchError(err) {
				continue
			}
			live := &unstructured.Unstructured{}
			live.SetGroupVersionKind(o.GroupVersionKind())
			err := e.client.Get(ctx, client.ObjectKeyFromObject(o), live)
			if apierrors.IsNotFound(err) {
				continue
			}
			if err != nil {
				return false, "", classify(err)
			}
			still = append(still, o)
		}
		pending = still
		if len(pending) == 0 {
			return true, "", nil
		}
		return false, "deletion of " + describeObjects(pending), nil
	})
}

// DeleteObjects deletes objects of an instance (in reverse apply order, as ssa does) that still
// carry its label, and returns them. An object of a kind the cluster no longer serves at any
// version cannot exist: it counts as deleted; one whose kind is served at another version than
// recorded is deleted at that version.
//
// An entry in another namespace than the instance's is never deleted: kudod puts no object of
// an instance there, so such an entry was written into the status by someone else, who must not
// get kudod to delete in another namespace (docs/security.md).
func (e *Engine) DeleteObjects(ctx context.Context, inst *v1alpha1.Instance, objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	objs = inNamespace(objs, inst.Namespace)
	if len(objs) == 0 {
		return nil, nil
	}
	served, err := e.servedForDeletion(objs)
	if err != nil {
		return nil, err
	}
	if len(served) > 0 {
		_, err := e.resources.DeleteAll(ctx, served, ssa.DeleteOptions{
			PropagationPolicy: metav1.DeletePropagationBackground,
			Inclusions:        map[string]string{LabelInstance: inst.Name},
		})
		if err != nil {
			return nil, classify(fmt.Errorf("prune: %w", err))
		}
	}
	return objs, nil
}

// servedForDeletion returns the objects whose kinds the cluster serves, each at a version it
// serves; objects of kinds it serves at no version are left out.
func (e *Engine) servedForDeletion(objs []*unstructured.Unstructured) ([]*unstructured.Unstructured, error) {
	out := make([]*unstructured.Unstructured, 0, len(objs))
	for _, o := range objs {
		gvk := o.GroupVersionKind()
		_, err := e.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if err == nil {
			out = append(out, o)
			continue
		}
		if !meta.IsNoMatchError(err) {
			return nil, classify(fmt.Errorf("discover %s: %w", gvk.GroupKind(), err))
		}
		m, err := e.mapper.RESTMapping(gvk.GroupKind())
		if meta.IsNoMatchError(err) {
			continue
		}
		if err != nil {
			return nil, classify(fmt.Errorf("discover %s: %w", gvk.GroupKind(), err))
		}
		c := o.DeepCopy()
		c.SetAPIVersion(m.GroupVersionKind.GroupVersion().String())
		out = append(out, c)
	}
	return out, nil
}

// inNamespace returns the objects that are cluster-scoped or in namespace.
func inNamespace(objs []*unstructured.Unstructured, namespace string) []*unstructured.Unstructured {
	out := objs[:0:0]
	for _, o := range objs {
		if ns := o.GetNamespace(); ns == "" || ns == namespace {
			out = append(out, o)
		}
	}
	return out
}
