package poll

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// ensureNamespace creates an instance's namespace if it is missing, once per namespace.
func (p *Poller) ensureNamespace(ctx context.Context, name string) error {
	p.mu.Lock()
	known := p.namespaces[name]
	p.mu.Unlock()
	if known {
		return nil
	}
	// Instances are applied concurrently: one creation per namespace, the others wait for it.
	_, err, _ := p.namespaceCreation.Do(name, func() (any, error) {
		reader := p.opts.Reader
		if reader == nil {
			reader = p.opts.Client
		}
		if err := ensureNamespace(ctx, reader, p.opts.Client, name); err != nil {
			return nil, err
		}
		p.mu.Lock()
		p.namespaces[name] = true
		p.mu.Unlock()
		return nil, nil
	})
	return err
}

// EnsureNamespace creates a namespace if it is missing, labelled as created by kudod; kudod
// never deletes it.
func EnsureNamespace(ctx context.Context, c client.Client, name string) error {
	return ensureNamespace(ctx, c, c, name)
}

// ensureNamespace reads the namespace's metadata only, through r: a typed Get through the
// manager's client would start a cache of every Namespace in the cluster (docs/scaling.md, "A
// noisy cluster").
func ensureNamespace(ctx context.Context, r client.Reader, w client.Writer, name string) error {
	meta := &metav1.PartialObjectMetadata{}
	meta.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("Namespace"))
	err := r.Get(ctx, types.NamespacedName{Name: name}, meta)
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("read namespace %s: %w", name, err)
	}
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.LabelManagedBy: "kudod"}}}
	if err := w.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}
