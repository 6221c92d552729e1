package bench

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/manifests"
)

// The daemon's client defaults (`kudod run --kube-api-qps --kube-api-burst`) and how many of
// its plan steps write at once (4 × `--concurrent`, which defaults to 4): the ceiling client
// gets the same.
const (
	daemonQPS              = 200
	daemonBurst            = 400
	daemonConcurrentWrites = 16
)

// renderDeploys renders the deploy plan of every instance in the repository's work tree, as
// the daemon renders it (kudod's labels, owner references to the Instance), into the namespace
// that rename gives each instance's own.
func renderDeploys(ctx context.Context, c client.Client, dir string, rename func(string) string) ([]*unstructured.Unstructured, error) {
	idx, err := manifests.IndexRepository(os.DirFS(dir), manifests.IndexOptions{Path: "."})
	if err != nil {
		return nil, fmt.Errorf("index %s: %w", dir, err)
	}
	if errs := idx.Findings.Errors(); len(errs) > 0 {
		return nil, fmt.Errorf("index %s: %v", dir, errs)
	}
	resources := ssa.NewResourceManager(c, polling.NewStatusPoller(c, c.RESTMapper(), polling.Options{}), ssa.Owner{Field: v1alpha1.FieldManager, Group: v1alpha1.GroupVersion.Group})
	engine := applier.NewEngine(c, resources, nil, applier.Options{AllowClusterScoped: true})
	var objs []*unstructured.Unstructured
	for _, in := range idx.Instances {
		inst := &v1alpha1.Instance{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Instance"},
			ObjectMeta: metav1.ObjectMeta{Name: in.Name, Namespace: rename(in.Namespace), UID: uuid.NewUUID()},
			Spec:       v1alpha1.InstanceSpec{Parameters: in.ParameterStrings()},
		}
		rp, err := engine.Render(ctx, &applier.Run{Instance: inst, Package: in.Package, Plan: "deploy", Params: inst.Spec.Parameters})
		if err != nil {
			return nil, fmt.Errorf("render %s: %w", in.Key(), err)
		}
		objs = append(objs, rp.Objects()...)
	}
	return objs, nil
}

// applyCeiling server-side applies objs with a bare client at the daemon's QPS, burst and
// write concurrency, and returns how long that took. Namespaces are created first, untimed.
func applyCeiling(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, objs []*unstructured.Unstructured) (time.Duration, error) {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = daemonQPS, daemonBurst
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return 0, err
	}
	namespaces := map[string]bool{}
	for _, o := range objs {
		if ns := o.GetNamespace(); !namespaces[ns] {
			namespaces[ns] = true
			if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
				return 0, fmt.Errorf("create namespace %s: %w", ns, err)
			}
		}
	}
	work := make(chan *unstructured.Unstructured)
	g, gctx := errgroup.WithContext(ctx)
	start := time.Now()
	g.Go(func() error {
		defer close(work)
		for _, o := range objs {
			select {
			case work <- o:
			case <-gctx.Done():
				return nil
			}
		}
		return nil
	})
	for range daemonConcurrentWrites {
		g.Go(func() error {
			for o := range work {
				u := o.DeepCopy()
				if err := c.Apply(gctx, client.ApplyConfigurationFromUnstructured(u), client.ForceOwnership, client.FieldOwner("kudod-bench-ceiling")); err != nil {
					return fmt.Errorf("apply %s %s: %w", o.GetKind(), types.NamespacedName{Namespace: o.GetNamespace(), Name: o.GetName()}, err)
				}
			}
			return nil
		})
	}
	err = g.Wait()
	return time.Since(start), err
}
