package applier_test

import (
	"context"
	"strings"
	"testing"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/internal/lanes"
)

// restrictedAccount creates a service account in the test's namespace that may manage
// ConfigMaps there and nothing else, and returns its user name.
func (e *env) restrictedAccount(t *testing.T, name string) string {
	t.Helper()
	ctx := context.Background()
	objs := []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: name}},
		&rbacv1.Role{ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: name}, Rules: []rbacv1.PolicyRule{
			{APIGroups: []string{""}, Resources: []string{"configmaps"}, Verbs: []string{"get", "list", "watch", "create", "update", "patch", "delete"}},
		}},
		&rbacv1.RoleBinding{ObjectMeta: metav1.ObjectMeta{Namespace: e.namespace, Name: name},
			RoleRef:  rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: name},
			Subjects: []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: e.namespace}}},
	}
	for _, o := range objs {
		if err := e.cluster.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	return lanes.Username(e.namespace, name)
}

// impersonatingEnv is newEnv with an engine that can impersonate.
func impersonatingEnv(t *testing.T) *env {
	t.Helper()
	e := newEnv(t, applier.Options{})
	cl, err := client.New(e.cluster.Config, client.Options{Scheme: e.cluster.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	rm := ssa.NewResourceManager(cl, polling.NewStatusPoller(cl, cl.RESTMapper(), polling.Options{}), ssa.Owner{Field: v1alpha1.FieldManager, Group: "kudod.dev"})
	e.engine = applier.NewEngine(cl, rm, nil, applier.Options{AllowClusterScoped: true, Impersonation: applier.NewImpersonation(e.cluster.Config, e.cluster.Scheme, cl.RESTMapper())})
	return e
}

// TestPlansRunAsTheServiceAccount: a plan run as a service account writes what the account may
// write; a step with an object it may not write fails FATAL, naming the account and the verb,
// and writes nothing (its dry-runs run as the account too).
func TestPlansRunAsTheServiceAccount(t *testing.T) {
	e := impersonatingEnv(t)
	user := e.restrictedAccount(t, "deployer")
	ctx := context.Background()
	ops := `tasks:
  - name: app
    kind: Apply
    spec:
      resources: [config.yaml]
  - name: admin
    kind: Apply
    spec:
      resources: [other.yaml, binding.yaml]
  - name: secret
    kind: Apply
    spec:
      resources: [third.yaml, secret.yaml]
plans:
  deploy:
    phases:
      - name: main
        steps:
          - name: app
            tasks: [app]
  escalate:
    phases:
      - name: main
        steps:
          - name: admin
            tasks: [admin]
  secret:
    phases:
      - name: main
        steps:
          - name: secret
            tasks: [secret]
`
	pkg := pkgFromFiles(t, ops, valueParam, map[string]string{
		"config.yaml": configMap("config"),
		"other.yaml":  configMap("other"),
		"third.yaml":  configMap("third"),
		"secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: secret\nstringData:\n  a: b\n",
		"binding.yaml": `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: ` + e.namespace + `-admin
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: deployer, namespace: ` + e.namespace + `}]
`,
	})
	inst := e.instance(t, "tenant", pkg)
	eng, err := e.engine.For(applier.Tenant{User: user, AllowClusterScoped: true})
	if err != nil {
		t.Fatal(err)
	}
	if eng.User() != user {
		t.Errorf("User() = %q, want %q", eng.User(), user)
	}
	execute := func(plan string) error {
		r := run(inst, pkg, plan, nil)
		rp, err := eng.Render(ctx, r)
		if err != nil {
			t.Fatal(err)
		}
		return eng.Execute(ctx, r, rp)
	}
	if err := execute("deploy"); err != nil {
		t.Fatalf("deploy as %s: %v", user, err)
	}
	cm := &corev1.ConfigMap{}
	if err := e.cluster.Client.Get(ctx, types.NamespacedName{Namespace: e.namespace, Name: "config"}, cm); err != nil {
		t.Fatal(err)
	}
	if got := cm.ManagedFields[0].Manager; got != v1alpha1.FieldManager {
		t.Errorf("field manager %q, want %s", got, v1alpha1.FieldManager)
	}

	err = execute("escalate")
	if !applier.IsFatal(err) {
		t.Fatalf("escalate: %v, want a fatal error", err)
	}
	for _, want := range []string{user, "cannot", "clusterrolebindings"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not name %q: %v", want, err)
		}
	}
	err = e.cluster.Client.Get(ctx, types.NamespacedName{Namespace: e.namespace, Name: "other"}, &corev1.ConfigMap{})
	if !apierrors.IsNotFound(err) {
		t.Errorf("the failed step wrote ConfigMap other: %v", err)
	}
	if err := e.cluster.Client.Get(ctx, types.NamespacedName{Name: e.namespace + "-admin"}, &rbacv1.ClusterRoleBinding{}); !apierrors.IsNotFound(err) {
		t.Errorf("the ClusterRoleBinding exists: %v", err)
	}

	// A forbidden object after an allowed one: its dry-run, as the account, fails before the
	// allowed one is written.
	err = execute("secret")
	if !applier.IsFatal(err) || !strings.Contains(err.Error(), "dry-run failed") || !strings.Contains(err.Error(), `cannot create resource "secrets"`) {
		t.Errorf("secret: %v, want a refused dry-run", err)
	}
	if err := e.cluster.Client.Get(ctx, types.NamespacedName{Namespace: e.namespace, Name: "third"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("the failed step wrote ConfigMap third: %v", err)
	}

	// The same identity is reused, not rebuilt.
	again, err := e.engine.For(applier.Tenant{User: user})
	if err != nil || again.User() != user || again.Resources() != eng.Resources() {
		t.Errorf("a second For of the same user: %v, resources shared %v", err, again.Resources() == eng.Resources())
	}
}

// TestLaneRefusesOtherNamespaces: with a lane, an object naming another namespace than the
// instance's is refused at render time; without one it is moved into the instance's
// namespace, as KUDO does. Cluster-scoped objects follow the tenant's AllowClusterScoped.
func TestLaneRefusesOtherNamespaces(t *testing.T) {
	e := newEnv(t, applier.Options{})
	ctx := context.Background()
	ops := `tasks:
  - name: app
    kind: Apply
    spec:
      resources: [elsewhere.yaml]
plans:
  deploy:
    phases:
      - name: main
        steps:
          - name: app
            tasks: [app]
`
	pkg := pkgFromFiles(t, ops, valueParam, map[string]string{
		"elsewhere.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: elsewhere\n  namespace: kube-system\n",
	})
	inst := e.instance(t, "lane", pkg)
	open, err := e.engine.For(applier.Tenant{AllowClusterScoped: true})
	if err != nil {
		t.Fatal(err)
	}
	rp, err := open.Render(ctx, run(inst, pkg, "deploy", nil))
	if err != nil {
		t.Fatal(err)
	}
	if ns := rp.Objects()[0].GetNamespace(); ns != e.namespace {
		t.Errorf("without a lane the object goes to %q, want %q", ns, e.namespace)
	}
	strict, err := e.engine.For(applier.Tenant{StrictNamespaces: true})
	if err != nil {
		t.Fatal(err)
	}
	_, err = strict.Render(ctx, run(inst, pkg, "deploy", nil))
	if !applier.IsFatal(err) || !strings.Contains(err.Error(), "names namespace kube-system") {
		t.Errorf("with a lane: %v, want a refusal naming kube-system", err)
	}

	cluster := pkgFromFiles(t, strings.Replace(ops, "elsewhere.yaml", "role.yaml", 2), valueParam, map[string]string{
		"role.yaml": "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata:\n  name: lane-test\nrules: []\n",
	})
	if _, err := strict.Render(ctx, run(inst, cluster, "deploy", nil)); err == nil || !strings.Contains(err.Error(), "is cluster-scoped") {
		t.Errorf("a tenant without AllowClusterScoped rendered a ClusterRole: %v", err)
	}
	if _, err := open.Render(ctx, run(inst, cluster, "deploy", nil)); err != nil {
		t.Errorf("a tenant with AllowClusterScoped: %v", err)
	}
}

// TestPruneStaysInTheInstancesNamespace: an inventory entry in another namespace (someone wrote
// it into the status) is never deleted.
func TestPruneStaysInTheInstancesNamespace(t *testing.T) {
	e := newEnv(t, applier.Options{})
	ctx := context.Background()
	other := e.cluster.Namespace(t)
	victim := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: other, Name: "victim", Labels: map[string]string{applier.LabelInstance: "prune"}}}
	if err := e.cluster.Client.Create(ctx, victim); err != nil {
		t.Fatal(err)
	}
	pkg := pkgFromFiles(t, "tasks: []\nplans:\n  deploy:\n    phases: []\n", valueParam, nil)
	inst := e.instance(t, "prune", pkg)
	inv := applier.Inventory{other + "_victim__ConfigMap": "v1"}
	deleted, err := e.engine.Prune(ctx, inst, inv, applier.Inventory{})
	if err != nil {
		t.Fatal(err)
	}
	if len(deleted) != 0 {
		t.Errorf("deleted %v", deleted)
	}
	if err := e.cluster.Client.Get(ctx, client.ObjectKeyFromObject(victim), &corev1.ConfigMap{}); err != nil {
		t.Errorf("the ConfigMap in another namespace: %v", err)
	}
}
