package instances

import (
	"context"
	"fmt"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

func TestDriftSpread(t *testing.T) {
	interval := 10 * time.Minute
	buckets := make([]int, 10)
	for i := range 1000 {
		key := types.NamespacedName{Namespace: "ns", Name: fmt.Sprintf("inst-%d", i)}
		d := driftSpread(key, interval)
		if d < 0 || d >= interval {
			t.Fatalf("spread of %s is %s, outside [0, %s)", key, d, interval)
		}
		if d != driftSpread(key, interval) {
			t.Fatalf("spread of %s changes between calls", key)
		}
		buckets[int(d*10/interval)]++
	}
	for i, n := range buckets {
		// 1,000 keys over ten buckets: about 100 each.
		if n < 50 || n > 150 {
			t.Errorf("bucket %d of the interval holds %d of 1000 first checks: not spread evenly (%v)", i, n, buckets)
		}
	}
}

func TestLiveFingerprint(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}, Data: map[string]string{"a": "1"}}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(cm).Build()
	inst := &v1alpha1.Instance{
		ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web", Generation: 1},
		Spec:       v1alpha1.InstanceSpec{PackageDigest: "sha256:1"},
		Status: v1alpha1.InstanceStatus{
			Plans:     []v1alpha1.PlanStatus{{Name: "deploy", UID: "u1", Status: v1alpha1.StatusComplete}},
			Inventory: []v1alpha1.InventoryEntry{{ID: "ns_web__ConfigMap", Version: "v1"}},
		},
	}
	ctx := context.Background()
	fp := func() uint64 {
		t.Helper()
		v, err := liveFingerprint(ctx, c, inst)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	first := fp()
	if again := fp(); again != first {
		t.Fatalf("fingerprint changed without a change: %x, then %x", first, again)
	}
	steps := []struct {
		name   string
		change func()
	}{
		{"the object is edited", func() {
			live := &corev1.ConfigMap{}
			if err := c.Get(ctx, client.ObjectKeyFromObject(cm), live); err != nil {
				t.Fatal(err)
			}
			live.Data["a"] = "2"
			if err := c.Update(ctx, live); err != nil {
				t.Fatal(err)
			}
		}},
		{"the object is deleted", func() {
			if err := c.Delete(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "web"}}); err != nil {
				t.Fatal(err)
			}
		}},
		{"a plan ran", func() { inst.Status.Plans[0].UID = "u2" }},
		{"the spec changed", func() { inst.Generation = 2 }},
		{"the package changed", func() { inst.Spec.PackageDigest = "sha256:2" }},
	}
	prev := first
	for _, s := range steps {
		s.change()
		got := fp()
		if got == prev {
			t.Errorf("%s: the fingerprint stayed %x", s.name, got)
		}
		prev = got
	}
	if _, err := liveFingerprint(ctx, nil, inst); err == nil {
		t.Error("no reader: want an error, so the check runs in full")
	}

	var m driftMemo
	key := types.NamespacedName{Namespace: "ns", Name: "web"}
	if m.unchanged(key, prev) {
		t.Error("an empty memo says unchanged")
	}
	m.remember(key, prev)
	if !m.unchanged(key, prev) || m.unchanged(key, prev+1) {
		t.Error("the memo does not compare with what it remembered")
	}
	m.forget(key)
	if m.unchanged(key, prev) {
		t.Error("a forgotten instance is still unchanged")
	}
}
