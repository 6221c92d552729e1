package testenv_test

import (
	"context"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

func TestAPIServerRoundTripsAConfigMap(t *testing.T) {
	env := testenv.APIServer(t)
	ns := env.Namespace(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	want := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: "settings", Namespace: ns},
		Data:       map[string]string{"answer": "42", "multi": "a\nb\n"},
	}
	if err := env.Client.Create(ctx, want); err != nil {
		t.Fatalf("creating the ConfigMap: %v", err)
	}
	var got corev1.ConfigMap
	if err := env.Client.Get(ctx, client.ObjectKeyFromObject(want), &got); err != nil {
		t.Fatalf("reading the ConfigMap back: %v", err)
	}
	if got.UID == "" || len(got.Data) != 2 || got.Data["answer"] != "42" || got.Data["multi"] != "a\nb\n" {
		t.Errorf("read back %#v, want the data written", got)
	}
}

func TestAPIServerIsSharedByThePackage(t *testing.T) {
	if a, b := testenv.APIServer(t), testenv.Get(t); a != b {
		t.Errorf("APIServer and Get returned two servers: %s and %s", a.Config.Host, b.Config.Host)
	}
}

func TestAPIServerServesKudodsCRD(t *testing.T) {
	env := testenv.APIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var crd apiextensionsv1.CustomResourceDefinition
	if err := env.Client.Get(ctx, client.ObjectKey{Name: "instances." + v1alpha1.GroupVersion.Group}, &crd); err != nil {
		t.Fatalf("reading kudod's CRD: %v", err)
	}
	var list v1alpha1.InstanceList
	if err := env.Client.List(ctx, &list, client.InNamespace(env.Namespace(t))); err != nil {
		t.Errorf("listing Instances through the scheme: %v", err)
	}
}

func TestAPIServerHasAWideServiceRange(t *testing.T) {
	env := testenv.APIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	// envtest's default range is 10.0.0.0/24: this address is only valid in the widened /16.
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "wide", Namespace: env.Namespace(t)},
		Spec: corev1.ServiceSpec{
			ClusterIP: "10.0.200.17",
			Ports:     []corev1.ServicePort{{Port: 80}},
		},
	}
	if err := env.Client.Create(ctx, svc); err != nil {
		t.Fatalf("creating a Service at %s: %v", svc.Spec.ClusterIP, err)
	}
}

func TestAPIServerKubeconfigFileWorks(t *testing.T) {
	env := testenv.APIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	ns := env.Namespace(t)
	out, err := env.Kubectl(ctx, "get", "namespace", ns, "-o", "name")
	if err != nil {
		t.Fatal(err)
	}
	if out != "namespace/"+ns+"\n" {
		t.Errorf("kubectl printed %q, want namespace/%s", out, ns)
	}
}
