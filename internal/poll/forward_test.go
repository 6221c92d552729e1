package poll

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// patchCounter counts the patches of each ConfigMap.
type patchCounter struct {
	mu      sync.Mutex
	patches map[string]int
}

func (p *patchCounter) count(name string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.patches[name]
}

// A burst of deliveries on a standby costs one write per repository at once and at most one
// more per interval, each repository on its own; the annotation the leader watches changes.
func TestForwarderCoalesces(t *testing.T) {
	s := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(s); err != nil {
		t.Fatal(err)
	}
	var objs []client.Object
	for _, repo := range []string{"platform", "apps"} {
		objs = append(objs, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "kudod-system", Name: v1alpha1.SourceStatusName(repo)}})
	}
	counter := &patchCounter{patches: map[string]int{}}
	c := fake.NewClientBuilder().WithScheme(s).WithObjects(objs...).WithInterceptorFuncs(interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			counter.mu.Lock()
			counter.patches[obj.GetName()]++
			counter.mu.Unlock()
			return c.Patch(ctx, obj, patch, opts...)
		},
	}).Build()

	const interval = 300 * time.Millisecond
	f := NewForwarder(c, "kudod-system", interval, logr.Discard())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { _ = f.Start(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	platform, apps := v1alpha1.SourceStatusName("platform"), v1alpha1.SourceStatusName("apps")
	for range 500 {
		f.Forward("platform")
	}
	f.Forward("apps")
	waitFor(t, time.Second, func() bool { return counter.count(platform) == 1 && counter.count(apps) == 1 })
	// Deliveries after the first write: one more write, an interval after the first.
	for range 100 {
		f.Forward("platform")
	}
	time.Sleep(interval / 3)
	if got := counter.count(platform); got != 1 {
		t.Fatalf("%d writes within the interval, want 1", got)
	}
	waitFor(t, 2*time.Second, func() bool { return counter.count(platform) == 2 })
	time.Sleep(2 * interval)
	if got, gotApps := counter.count(platform), counter.count(apps); got != 2 || gotApps != 1 {
		t.Fatalf("writes: platform %d, apps %d; want 2 and 1", got, gotApps)
	}
	cm := &corev1.ConfigMap{}
	if err := c.Get(ctx, client.ObjectKey{Namespace: "kudod-system", Name: platform}, cm); err != nil {
		t.Fatal(err)
	}
	if cm.Annotations[v1alpha1.AnnotationReconcileRequest] == "" {
		t.Fatalf("no reconcile request on %s: %v", platform, cm.Annotations)
	}
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %s", timeout)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
