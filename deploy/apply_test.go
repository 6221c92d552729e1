package deploy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/test/testenv"
)

// fieldManager is who applies the install in these tests, as `kubectl apply --server-side`
// would.
const fieldManager = "kudod-install-test"

// apply server-side applies every object of the install in kustomize's order (Namespace and
// CRD first), failing the test for each object the API server refuses.
func (in *install) apply(t *testing.T, c client.Client) {
	t.Helper()
	in.applyAs(t, c, fieldManager)
}

// applyAs applies the install with a field manager of its own: applying a different value to
// a field another manager set is a conflict, which fails the test.
func (in *install) applyAs(t *testing.T, c client.Client, manager string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, o := range in.objects {
		if err := c.Apply(ctx, client.ApplyConfigurationFromUnstructured(o.DeepCopy()), client.FieldOwner(manager)); err != nil {
			t.Errorf("apply %s %s: %v", o.GetKind(), o.GetName(), err)
		}
	}
	if t.Failed() {
		t.FailNow()
	}
}

// TestAPIServerAcceptsTheInstall: server-side apply of every object is accepted by a real API
// server that already has the CRD (as after kudod installed it), each object then exists as
// applied, and a second apply changes nothing.
func TestAPIServerAcceptsTheInstall(t *testing.T) {
	c := testenv.APIServer(t)
	in := build(t)
	in.apply(t, c.Client)

	ctx := context.Background()
	versions := map[string]string{}
	for _, o := range in.objects {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(o), live); err != nil {
			t.Fatalf("%s %s after apply: %v", o.GetKind(), o.GetName(), err)
		}
		for k, v := range o.GetLabels() {
			if live.GetLabels()[k] != v {
				t.Errorf("%s %s: label %s=%q, applied %q", o.GetKind(), o.GetName(), k, live.GetLabels()[k], v)
			}
		}
		versions[o.GetKind()+"/"+o.GetName()] = live.GetResourceVersion()
	}

	in.apply(t, c.Client)
	for _, o := range in.objects {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(o), live); err != nil {
			t.Fatal(err)
		}
		if id := o.GetKind() + "/" + o.GetName(); live.GetResourceVersion() != versions[id] {
			t.Errorf("%s changed on the second apply: the API server rewrites what the install says", id)
		}
	}
}

// TestDaemonPodMeetsRestrictedPodSecurity: kudod-system enforces the restricted Pod Security
// Standard, and the API server admits the daemon's pod there, while it refuses the same pod
// without its security context (so the check is really enforced).
func TestDaemonPodMeetsRestrictedPodSecurity(t *testing.T) {
	c := testenv.APIServer(t)
	in := build(t)
	in.apply(t, c.Client)
	tmpl := in.deployment(t).Spec.Template

	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "kudod-psa-check", Namespace: namespace, Labels: tmpl.Labels},
		Spec:       *tmpl.Spec.DeepCopy(),
	}
	if err := c.Client.Create(ctx, pod, client.DryRunAll); err != nil {
		t.Errorf("the daemon's pod is refused in %s: %v", namespace, err)
	}

	loose := &corev1.Pod{ObjectMeta: pod.ObjectMeta, Spec: *tmpl.Spec.DeepCopy()}
	loose.Spec.SecurityContext = nil
	loose.Spec.Containers[0].SecurityContext = nil
	err := c.Client.Create(ctx, loose, client.DryRunAll)
	if !apierrors.IsForbidden(err) || !strings.Contains(err.Error(), "PodSecurity") {
		t.Errorf("a pod without a security context in %s: got %v, want a PodSecurity refusal", namespace, err)
	}
}

// TestAPIServerAcceptsAShardBesideTheInstall: the shard overlay of docs/scaling.md applies next
// to the default install without touching any object of it (each is applied by its own field
// manager, so a shared object with different content would conflict).
func TestAPIServerAcceptsAShardBesideTheInstall(t *testing.T) {
	c := testenv.APIServer(t)
	build(t).apply(t, c.Client)
	shard, _ := buildDocumentedOverlay(t, "../docs/scaling.md", "shards/team-a")
	shard.applyAs(t, c.Client, "kudod-shard-test")

	ctx := context.Background()
	for _, o := range shard.objects {
		live := &unstructured.Unstructured{}
		live.SetGroupVersionKind(o.GroupVersionKind())
		if err := c.Client.Get(ctx, client.ObjectKeyFromObject(o), live); err != nil {
			t.Errorf("%s %s/%s after apply: %v", o.GetKind(), o.GetNamespace(), o.GetName(), err)
		}
	}
}
