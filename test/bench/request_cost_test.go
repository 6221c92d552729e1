package bench

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"
	"text/tabwriter"
	"time"

	"golang.org/x/sync/errgroup"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/test/testenv"
)

// requestCost is kube-apiserver's CPU for one kind of request, averaged over many.
type requestCost struct {
	name string
	// perInstance is how many of these kudod's cold start sends per instance of the benchmark
	// package, and ceiling how many the bare client sends.
	perInstance, ceiling int
	ms                   float64
}

// BenchmarkAPIServerRequestCost measures kube-apiserver's CPU per kind of request a cold start
// sends, on an API server of its own, with the objects kudod renders for the benchmark
// package (`make bench-profile`; docs/scaling.md, "Where the time goes"). It explains P1's
// ratio to the ceiling: what kudod sends beyond the ceiling's applies, and what each costs.
// Service IP allocation grows with the Services already allocated, so these are figures for
// a small cluster (KUDOD_BENCH_INSTANCES, default 1,000 instances, 4,000 objects).
func BenchmarkAPIServerRequestCost(b *testing.B) {
	n := instancesFromEnv(b, 1000)
	cluster := testenv.NewAPIServer(b)
	ctx := context.Background()
	cfg := rest.CopyConfig(cluster.Config)
	cfg.QPS, cfg.Burst = daemonQPS, daemonBurst
	c, err := client.New(cfg, client.Options{Scheme: cluster.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	refs := layout("cost", n)
	repo, _ := newBenchRepo(b, refs)
	objs, err := renderDeploys(ctx, c, repo.work, func(ns string) string { return ns })
	if err != nil {
		b.Fatal(err)
	}
	byKind := map[string][]*unstructured.Unstructured{}
	byNamespace := map[string][]*unstructured.Unstructured{}
	for _, o := range objs {
		byKind[o.GetKind()] = append(byKind[o.GetKind()], o)
		byNamespace[o.GetNamespace()] = append(byNamespace[o.GetNamespace()], o)
	}
	for _, ref := range refs {
		if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ref.Namespace}}); client.IgnoreAlreadyExists(err) != nil {
			b.Fatal(err)
		}
	}

	var costs []requestCost
	measure := func(name string, perInstance, ceiling, count int, send func(i int) error) {
		_, before := settledAPIServer(ctx, b, cluster.Config)
		var g errgroup.Group
		g.SetLimit(daemonConcurrentWrites)
		for i := range count {
			g.Go(func() error { return send(i) })
		}
		if err := g.Wait(); err != nil {
			b.Fatalf("%s: %v", name, err)
		}
		after, _ := settledAPIServer(ctx, b, cluster.Config)
		costs = append(costs, requestCost{name: name, perInstance: perInstance, ceiling: ceiling, ms: 1000 * (after.cpu - before.cpu) / float64(count)})
	}
	// The first object of a new step is applied without a dry-run (applier.applyNew); in the
	// benchmark package that is the ServiceAccount (server-side apply's kind order).
	kinds := []string{"ServiceAccount", "Secret", "ConfigMap", "Service"}
	for _, kind := range kinds[1:] {
		list := byKind[kind]
		measure("dry-run create "+kind, 1, 0, len(list), func(i int) error {
			return c.Create(ctx, list[i].DeepCopy(), client.DryRunAll, client.FieldOwner(v1alpha1.FieldManager))
		})
	}
	for _, kind := range kinds {
		list := byKind[kind]
		measure("server-side apply "+kind+" (creates it)", 1, 1, len(list), func(i int) error { return applier.ServerSideApply(ctx, c, list[i]) })
	}
	instance := func(i int) *v1alpha1.Instance {
		return &v1alpha1.Instance{
			TypeMeta:   metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Instance"},
			ObjectMeta: metav1.ObjectMeta{Namespace: refs[i].Namespace, Name: refs[i].Name, Labels: map[string]string{v1alpha1.LabelRepository: "cost"}, Finalizers: []string{v1alpha1.FinalizerCleanup}},
			Spec: v1alpha1.InstanceSpec{
				Operator: v1alpha1.OperatorRef{Name: operatorName, Version: "1.0.0"}, Parameters: map[string]string{"VALUE": "v0"},
				Source: v1alpha1.SourceRef{Repository: "cost", Path: "instances/" + refs[i].Name + ".yaml", PackagePath: "operators/bench/1.0.0", Revision: "ed40e0316a7249c290ec64aca7f29ad64cd2086a"},
			},
		}
	}
	measure("server-side apply Instance (creates it)", 1, 0, n, func(i int) error {
		u, err := runtime.DefaultUnstructuredConverter.ToUnstructured(instance(i))
		if err != nil {
			return err
		}
		return applier.ServerSideApply(ctx, c, &unstructured.Unstructured{Object: u})
	})
	measure("merge patch of an Instance's status (the plan COMPLETE)", 1, 0, n, func(i int) error {
		in := instance(i)
		orig := in.DeepCopy()
		now := metav1.Now()
		in.Status = v1alpha1.InstanceStatus{
			ObservedGeneration: 1,
			Conditions:         []metav1.Condition{{Type: "Ready", Status: metav1.ConditionTrue, ObservedGeneration: 1, LastTransitionTime: now, Reason: "PlanComplete", Message: "plan deploy COMPLETE"}},
			Plans: []v1alpha1.PlanStatus{{Name: "deploy", Strategy: "serial", Status: v1alpha1.StatusComplete, Phases: []v1alpha1.PhaseStatus{{
				Name: "main", Strategy: "serial", Status: v1alpha1.StatusComplete, Steps: []v1alpha1.StepStatus{{Name: "app", Status: v1alpha1.StatusComplete}},
			}}}},
		}
		inventory := applier.NewInventory(nil)
		for _, o := range byNamespace[refs[i].Namespace] {
			if o.GetName() == refs[i].Name || strings.HasPrefix(o.GetName(), refs[i].Name+"-") {
				inventory.Add(o)
			}
		}
		in.Status.Inventory = inventory.Entries()
		if len(in.Status.Inventory) != len(kinds) {
			return fmt.Errorf("%s: %d objects rendered, want %d", refs[i], len(in.Status.Inventory), len(kinds))
		}
		// A merge patch needs no resourceVersion: it is sent as the controller sends it.
		return c.Status().Patch(ctx, in, client.MergeFrom(orig))
	})
	measure("create an Event (events.k8s.io/v1)", 1, 0, n, func(i int) error {
		return c.Create(ctx, &eventsv1.Event{
			ObjectMeta: metav1.ObjectMeta{Namespace: refs[i].Namespace, Name: refs[i].Name + ".cost"}, EventTime: metav1.NowMicro(),
			ReportingController: "kudod.dev/kudod", ReportingInstance: "kudod-cost", Action: "Reconcile", Reason: "PlanComplete", Note: "plan deploy COMPLETE", Type: corev1.EventTypeNormal,
			Regarding: corev1.ObjectReference{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Instance", Namespace: refs[i].Namespace, Name: refs[i].Name},
		})
	})
	printRequestCosts(b, n, costs)
}

// settledAPIServer scrapes kube-apiserver once it has finished the work of the requests sent
// before: a write's watch event is decoded and dispatched after the response, so without
// waiting one kind of request's work is counted in the next one's (the first kind measured
// looked up to 30 % cheaper than the same requests measured second). It returns the counts at
// the start and at the end of the first second in which kube-apiserver used under 0.15 of a
// core, a little above what it uses idle: a measurement starts at the end of a quiet second
// and ends at the start of one, so that idle seconds are not counted in it.
func settledAPIServer(ctx context.Context, b *testing.B, cfg *rest.Config) (quietStart, quietEnd apiServerCounts) {
	b.Helper()
	last, err := scrapeAPIServer(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	for range 60 {
		time.Sleep(time.Second)
		now, err := scrapeAPIServer(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		if now.cpu-last.cpu < 0.15 {
			return last, now
		}
		last = now
	}
	b.Fatal("kube-apiserver did not settle within a minute")
	return last, last
}

func printRequestCosts(b *testing.B, n int, costs []requestCost) {
	var kudod, ceiling float64
	tw := tabwriter.NewWriter(os.Stdout, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(os.Stdout, "kube-apiserver CPU per request, %d instances of the benchmark package (4 objects each), %d at once:\n", n, daemonConcurrentWrites)
	fmt.Fprintln(tw, "request\tms\tkudod per instance\tceiling per instance\t")
	for _, c := range costs {
		fmt.Fprintf(tw, "%s\t%.2f\t%d\t%d\t\n", c.name, c.ms, c.perInstance, c.ceiling)
		kudod += float64(c.perInstance) * c.ms
		ceiling += float64(c.ceiling) * c.ms
	}
	fmt.Fprintf(tw, "sum per instance\t\t%.1f ms\t%.1f ms\t\n", kudod, ceiling)
	tw.Flush()
	fmt.Printf("the ceiling's share of kudod's API-server CPU: %.0f %% (the best rate kudod can reach beside the ceiling when the API server is the limit)\n", 100*ceiling/kudod)
	b.ReportMetric(kudod, "ms-cpu/kudod-instance")
	b.ReportMetric(ceiling, "ms-cpu/ceiling-instance")
}
