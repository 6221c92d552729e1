package applier

import (
	"context"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// ServerSideApply applies obj, typed or unstructured, with kudod's field manager, taking over
// fields another manager set (ForceOwnership, as Flux does). opts add to that, e.g.
// client.DryRunAll. Every server-side apply of kudod goes through here.
func ServerSideApply(ctx context.Context, c client.Writer, obj runtime.Object, opts ...client.ApplyOption) error {
	u, ok := obj.(*unstructured.Unstructured)
	if ok {
		u = u.DeepCopy()
	} else {
		var err error
		if u, err = ApplyObject(obj); err != nil {
			return err
		}
	}
	return c.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), append([]client.ApplyOption{client.ForceOwnership, client.FieldOwner(v1alpha1.FieldManager)}, opts...)...)
}

// ApplyObject converts a typed object for server-side apply: without status and creation
// timestamp, which a typed object always carries and an apply must not send.
func ApplyObject(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, err
	}
	u := &unstructured.Unstructured{Object: m}
	unstructured.RemoveNestedField(u.Object, "status")
	unstructured.RemoveNestedField(u.Object, "metadata", "creationTimestamp")
	return u, nil
}
