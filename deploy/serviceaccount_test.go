package deploy_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// serviceAccount is the user kudod runs as in the cluster.
const serviceAccount = "system:serviceaccount:" + namespace + ":kudod"

// TestServiceAccountRunsOperators installs kudod on a simulated cluster (with the controller
// manager, so the aggregated ClusterRole is filled in) and runs the daemon with the token of
// the install's ServiceAccount and the Deployment's flags, as its pod would. With nothing but
// the install's RBAC, and kudod-operators bound to the default service account kudod-deployer
// in the two instance namespaces as docs/security.md says, its plans, run as kudod-deployer,
// deploy the quorum test package (a StatefulSet with volume claims, a retired
// PodDisruptionBudget version, Services, a ConfigMap, a Job applied then deleted) and a package
// with a ServiceAccount, Role, RoleBinding, Secret, Pipe task and Deployment, then remove both,
// and the API server never refused one of kudod's requests. The daemon's own pod is admitted and
// becomes available.
func TestServiceAccountRunsOperators(t *testing.T) {
	serviceAccountRuns(t, "sa", "{name: quorum, version: 0.2.0}", func(repo *testenv.GitRepo) { repo.AddOperator("quorum", "1.37.0-0.2.0") })
}

// TestCatalogServiceAccountRunsRealOperators does the same with zookeeper 3.6.2-0.3.3.
func TestCatalogServiceAccountRunsRealOperators(t *testing.T) {
	testenv.CatalogDir(t)
	serviceAccountRuns(t, "sa-catalog", "{name: zookeeper, version: 0.3.3}", func(repo *testenv.GitRepo) { repo.AddCatalogOperator("zookeeper", "3.6.2-0.3.3") })
}

// serviceAccountRuns is TestServiceAccountRunsOperators with add writing the package that
// operator (spec.operator of its instance) names. Namespaces and the repository are named
// after prefix, so that runs on the package's cluster never meet.
func serviceAccountRuns(t *testing.T, prefix, operator string, add func(*testenv.GitRepo)) {
	c := testenv.SimulatedCluster(t)
	in := build(t)
	in.apply(t, c.Client)
	ctx := context.Background()

	await(t, time.Minute, "kudod-operators to aggregate kudod-operators-default", func() (bool, string) {
		role := &rbacv1.ClusterRole{}
		if err := c.Client.Get(ctx, types.NamespacedName{Name: "kudod-operators"}, role); err != nil {
			return false, err.Error()
		}
		return len(role.Rules) > 0, fmt.Sprintf("%d rules", len(role.Rules))
	})
	await(t, 2*time.Minute, "the kudod Deployment to be available", func() (bool, string) {
		dep := &appsv1.Deployment{}
		if err := c.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: "kudod"}, dep); err != nil {
			return false, err.Error()
		}
		return dep.Status.AvailableReplicas == 1, fmt.Sprintf("status %+v", dep.Status)
	})

	pipeDir := t.TempDir()
	const greeting = "hello from a pipe"
	if err := os.WriteFile(filepath.Join(pipeDir, "greeting.txt"), []byte(greeting), 0o644); err != nil {
		t.Fatal(err)
	}
	data, apps, repository := prefix+"-data", prefix+"-apps", prefix+"-platform"
	repo := testenv.NewGitRepo(t)
	add(repo)
	repo.Write(accessPackage(pipeDir))
	deployed := repo.Commit("deploy", map[string]string{
		"instances/zk.yaml":     "apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata: {name: zk, namespace: " + data + "}\nspec:\n  operator: " + operator + "\n  parameters: {NODE_COUNT: 1, MEMORY: 256Mi}\n",
		"instances/access.yaml": "apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata: {name: access, namespace: " + apps + "}\nspec:\n  operator: {name: access}\n",
	})

	grantDeployer(t, c, data)
	grantDeployer(t, c, apps)
	runAsServiceAccount(t, c, repository, repo)

	waitPlan(t, c, data, "zk", deployed)
	waitPlan(t, c, apps, "access", deployed)

	piped := &corev1.ConfigMapList{}
	if err := c.Client.List(ctx, piped, client.InNamespace(apps)); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(piped.Items, func(cm corev1.ConfigMap) bool { return string(cm.BinaryData["greeting.txt"]) == greeting }) {
		t.Errorf("no ConfigMap in %s holds the piped greeting.txt", apps)
	}
	lease := &coordinationv1.Lease{}
	if err := c.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: "kudod-leader"}, lease); err != nil || lease.Spec.HolderIdentity == nil {
		t.Errorf("kudod holds no lease kudod-leader in %s: %v", namespace, err)
	}
	if err := c.Client.Get(ctx, types.NamespacedName{Namespace: namespace, Name: "kudod-source-" + repository}, &corev1.ConfigMap{}); err != nil {
		t.Errorf("kudod recorded no repository status: %v", err)
	}
	events := &eventsv1.EventList{}
	if err := c.Client.List(ctx, events, client.InNamespace(data)); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(events.Items, func(e eventsv1.Event) bool { return e.Regarding.Kind == "Instance" && e.Regarding.Name == "zk" }) {
		t.Errorf("kudod recorded no event on Instance %s/zk", data)
	}

	repo.Commit("remove everything", map[string]string{"instances/zk.yaml": "", "instances/access.yaml": ""})
	for _, key := range []types.NamespacedName{{Namespace: data, Name: "zk"}, {Namespace: apps, Name: "access"}} {
		await(t, 3*time.Minute, "Instance "+key.String()+" to be removed", func() (bool, string) {
			inst := &v1alpha1.Instance{}
			err := c.Client.Get(ctx, key, inst)
			if apierrors.IsNotFound(err) {
				return true, ""
			}
			return false, fmt.Sprintf("err %v, finalizers %v, last plan %+v", err, inst.Finalizers, inst.Status.LastPlan)
		})
	}

	checkNothingForbidden(t, c)
	checkImpersonated(t, c, data, apps)
}

// TestServiceAccountAppliesARoleWithItsBinding: the broker test package's configuration task
// applies its RoleBinding, then the Role it binds, in one task (both in the retired
// rbac.authorization.k8s.io/v1beta1). kudod has no bind verb, so Kubernetes lets it create the
// binding only once the Role exists and kudod holds every permission in it; with the install's
// RBAC the task still completes.
func TestServiceAccountAppliesARoleWithItsBinding(t *testing.T) {
	roleWithBinding(t, "sa", filepath.Join(testenv.FixtureOperator(t, "broker", "1.0.0"), "templates"))
}

// TestCatalogServiceAccountAppliesARoleWithItsBinding does the same with Kafka's templates.
func TestCatalogServiceAccountAppliesARoleWithItsBinding(t *testing.T) {
	roleWithBinding(t, "sa-catalog", filepath.Join(testenv.CatalogOperator(t, "kafka", "2.5.1-1.3.2"), "templates"))
}

// roleWithBinding deploys serviceaccount.yaml, rolebinding.yaml and role.yaml of the templates
// directory as one task, in a namespace and repository named after prefix.
func roleWithBinding(t *testing.T, prefix, templates string) {
	c := testenv.SimulatedCluster(t)
	build(t).apply(t, c.Client)
	const dir = "operators/rbac/0.1.0/"
	files := map[string]string{
		dir + "operator.yaml": `apiVersion: kudo.dev/v1beta1
name: rbac
operatorVersion: 0.1.0
kubernetesVersion: 1.20.0
tasks:
  - name: configuration
    kind: Apply
    spec:
      resources: [serviceaccount.yaml, rolebinding.yaml, role.yaml]
plans:
  deploy:
    phases:
      - name: deploy
        steps:
          - name: configuration
            tasks: [configuration]
`,
		dir + "params.yaml":   "apiVersion: kudo.dev/v1beta1\nparameters: []\n",
		"instances/rbac.yaml": "apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata: {name: rbac, namespace: " + prefix + "-rbac}\nspec:\n  operator: {name: rbac}\n",
	}
	for _, name := range []string{"serviceaccount.yaml", "rolebinding.yaml", "role.yaml"} {
		data, err := os.ReadFile(filepath.Join(templates, name))
		if err != nil {
			t.Fatal(err)
		}
		files[dir+"templates/"+name] = string(data)
	}
	repo := testenv.NewGitRepo(t)
	deployed := repo.Commit("RBAC", files)
	grantDeployer(t, c, prefix+"-rbac")
	runAsServiceAccount(t, c, prefix+"-rbac", repo)
	waitPlan(t, c, prefix+"-rbac", "rbac", deployed)
	checkNothingForbidden(t, c)
}

// TestServiceAccountIsLeastPrivileged: what the install lets kudod do: what the daemon itself
// needs and impersonating service accounts and the preview user — no write of anything else,
// no other CRD, no Namespace deletion, no other Lease, no Secret, no RBAC, no bind or escalate,
// no other user or group. A tenant's kudod-deployer, once granted kudod-operators in its
// namespace, may create there what packages create and nothing elsewhere; the preview user may
// read and dry-run, and the API server refuses its real writes.
func TestServiceAccountIsLeastPrivileged(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	in := build(t)
	in.apply(t, c.Client)
	ctx := context.Background()
	type access struct {
		verb, group, resource, subresource, namespace, name string
	}
	daemon := []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"}
	allowed := []access{
		{"list", "kudod.dev", "instances", "", "", ""},
		{"watch", "kudod.dev", "instances", "", "", ""},
		{"create", "kudod.dev", "instances", "", "apps", "zk"},
		{"patch", "kudod.dev", "instances", "status", "apps", "zk"},
		{"delete", "kudod.dev", "instances", "", "apps", "zk"},
		{"create", "apiextensions.k8s.io", "customresourcedefinitions", "", "", "instances.kudod.dev"},
		{"patch", "apiextensions.k8s.io", "customresourcedefinitions", "", "", "instances.kudod.dev"},
		{"create", "", "namespaces", "", "", "apps"},
		{"watch", "", "namespaces", "", "", ""},
		{"create", "events.k8s.io", "events", "", "apps", ""},
		{"create", "coordination.k8s.io", "leases", "", namespace, ""},
		{"update", "coordination.k8s.io", "leases", "", namespace, "kudod-leader"},
		{"watch", "", "configmaps", "", namespace, ""},
		{"impersonate", "", "serviceaccounts", "", "apps", defaultServiceAccount},
		{"impersonate", "", "users", "", "", "kudod-preview"},
	}
	denied := []access{
		{"create", "apiextensions.k8s.io", "customresourcedefinitions", "", "", ""},
		{"patch", "apiextensions.k8s.io", "customresourcedefinitions", "", "", "kafkas.example.com"},
		{"delete", "apiextensions.k8s.io", "customresourcedefinitions", "", "", "instances.kudod.dev"},
		{"delete", "", "namespaces", "", "", "apps"},
		{"update", "coordination.k8s.io", "leases", "", namespace, "someone-else"},
		{"update", "coordination.k8s.io", "leases", "", "kube-system", "kudod-leader"},
		{"list", "", "secrets", "", "", ""},
		{"patch", "", "secrets", "", "apps", "tls"},
		{"create", "", "pods", "", "apps", ""},
		{"create", "", "pods", "exec", "apps", "pipe"},
		{"patch", "apps", "statefulsets", "", "apps", "zk"},
		{"create", "", "configmaps", "", "apps", ""},
		{"create", "rbac.authorization.k8s.io", "rolebindings", "", "apps", "zk"},
		{"create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", ""},
		{"bind", "rbac.authorization.k8s.io", "clusterroles", "", "", "cluster-admin"},
		{"escalate", "rbac.authorization.k8s.io", "roles", "", "apps", ""},
		{"impersonate", "", "users", "", "", "admin"},
		{"impersonate", "", "groups", "", "", "system:masters"},
		{"create", "", "nodes", "", "", ""},
	}
	check := func(user string, groups []string, a access) (bool, string) {
		sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
			User: user, Groups: groups,
			ResourceAttributes: &authorizationv1.ResourceAttributes{
				Verb: a.verb, Group: a.group, Resource: a.resource, Subresource: a.subresource, Namespace: a.namespace, Name: a.name,
			},
		}}
		if err := c.Client.Create(ctx, sar); err != nil {
			t.Fatal(err)
		}
		return sar.Status.Allowed, sar.Status.Reason
	}
	for _, a := range allowed {
		if ok, why := check(serviceAccount, daemon, a); !ok {
			t.Errorf("kudod may not %+v: %s", a, why)
		}
	}
	for _, a := range denied {
		if ok, why := check(serviceAccount, daemon, a); ok {
			t.Errorf("kudod may %+v: %s", a, why)
		}
	}

	// A tenant's service account, once granted kudod-operators in its namespace.
	tenantNS := "lp-tenant"
	grantDeployer(t, c, tenantNS)
	tenant := "system:serviceaccount:" + tenantNS + ":" + defaultServiceAccount
	tenantGroups := []string{"system:serviceaccounts", "system:serviceaccounts:" + tenantNS, "system:authenticated"}
	for _, a := range []access{
		{"patch", "apps", "statefulsets", "", tenantNS, "zk"},
		{"create", "", "pods", "exec", tenantNS, "pipe"},
		{"patch", "", "secrets", "", tenantNS, "tls"},
		{"create", "rbac.authorization.k8s.io", "rolebindings", "", tenantNS, "zk"},
	} {
		if ok, why := check(tenant, tenantGroups, a); !ok {
			t.Errorf("%s may not %+v: %s", tenant, a, why)
		}
	}
	for _, a := range []access{
		{"patch", "apps", "statefulsets", "", "kube-system", "zk"},
		{"create", "", "pods", "", namespace, ""},
		{"create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", ""},
		{"list", "", "secrets", "", tenantNS, ""},
	} {
		if ok, why := check(tenant, tenantGroups, a); ok {
			t.Errorf("%s may %+v: %s", tenant, a, why)
		}
	}

	// The preview user reads and dry-runs; the API server refuses its real writes.
	preview := []string{"system:authenticated"}
	for _, a := range []access{{"get", "apps", "statefulsets", "", tenantNS, "zk"}, {"patch", "", "configmaps", "", tenantNS, "x"}} {
		if ok, why := check("kudod-preview", preview, a); !ok {
			t.Errorf("kudod-preview may not %+v: %s", a, why)
		}
	}
	for _, a := range []access{{"delete", "", "configmaps", "", tenantNS, "x"}, {"list", "", "secrets", "", tenantNS, ""}, {"create", "rbac.authorization.k8s.io", "clusterrolebindings", "", "", ""}} {
		if ok, why := check("kudod-preview", preview, a); ok {
			t.Errorf("kudod-preview may %+v: %s", a, why)
		}
	}
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: "kudod-preview"}
	as, err := client.New(cfg, client.Options{Scheme: c.Scheme})
	if err != nil {
		t.Fatal(err)
	}
	cm := func() *corev1.ConfigMap {
		return &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: tenantNS, Name: "preview-probe"}}
	}
	// The policy takes a moment to reach the API server's admission.
	await(t, time.Minute, "the API server to refuse kudod-preview's real writes", func() (bool, string) {
		err := as.Create(ctx, cm())
		if err == nil {
			_ = c.Client.Delete(ctx, cm())
			return false, "a real create as kudod-preview succeeded"
		}
		return strings.Contains(err.Error(), "kudod-preview may only send dry-run requests"), err.Error()
	})
	if err := as.Create(ctx, cm(), client.DryRunAll); err != nil {
		t.Errorf("a dry-run create as kudod-preview: %v", err)
	}
}

// TestClusterWideComponentBindsOperators: deploy/cluster-wide, added to an overlay, binds
// kudod-operators to kudod's own ServiceAccount and clears the default service account.
func TestClusterWideComponentBindsOperators(t *testing.T) {
	dir := t.TempDir()
	kust := "resources: [" + mustAbsRel(t, dir, ".") + "]\ncomponents: [" + mustAbsRel(t, dir, "cluster-wide") + "]\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kust), 0o600); err != nil {
		t.Fatal(err)
	}
	in := kustomize(t, dir)
	b := decode[rbacv1.ClusterRoleBinding](t, in.find(t, "ClusterRoleBinding", "kudod-operators"))
	if b.RoleRef.Name != "kudod-operators" || len(b.Subjects) != 1 || b.Subjects[0].Name != "kudod" || b.Subjects[0].Namespace != namespace {
		t.Errorf("kudod-operators binding %+v", b)
	}
	c := in.deployment(t).Spec.Template.Spec.Containers[0]
	if slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "KUDOD_DEFAULT_SERVICE_ACCOUNT" }) < 0 || envValue(c.Env, "KUDOD_DEFAULT_SERVICE_ACCOUNT") != "" {
		t.Errorf("env %+v, want KUDOD_DEFAULT_SERVICE_ACCOUNT empty", c.Env)
	}
}

// mustAbsRel returns the path of deploy/sub relative to dir, as kustomize wants it.
func mustAbsRel(t *testing.T, dir, sub string) string {
	t.Helper()
	abs, err := filepath.Abs(sub)
	if err != nil {
		t.Fatal(err)
	}
	rel, err := filepath.Rel(dir, abs)
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

// runAsServiceAccount runs kudod until the test ends, following repo under
// the name repository, with a token of the install's ServiceAccount and leader election in
// kudod-system, as the Deployment runs it.
func runAsServiceAccount(t *testing.T, c *testenv.Cluster, repository string, repo *testenv.GitRepo) {
	t.Helper()
	kubeconfig := serviceAccountKubeconfig(t, c)
	configFile := filepath.Join(t.TempDir(), "kudod.yaml")
	cfg := fmt.Sprintf("repositories:\n  - name: %s\n    url: file://%s\n    branch: main\n    interval: 1s\n    allowEmpty: true\ncluster:\n  kubeconfig: %s\n", repository, repo.Dir, kubeconfig)
	if err := os.WriteFile(configFile, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	runDaemon(t, "run", "--config", configFile, "--leader-elect=true", "--leader-election-namespace="+namespace,
		"--metrics-bind-address=0", "--health-probe-bind-address=0", "--webhook-bind-address=0",
		"--default-service-account="+defaultServiceAccount, "--preview-user=kudod-preview",
		"--step-timeout=1m", "--cache-dir", t.TempDir(), "--log-format=text")
}

// grantDeployer creates namespace (if missing) and binds kudod-operators there to the service
// account plans run as, as docs/security.md tells a platform team to do for each tenant
// namespace, and waits until the controller manager has aggregated kudod-operators.
func grantDeployer(t *testing.T, c *testenv.Cluster, ns string) {
	t.Helper()
	ctx := context.Background()
	if err := c.Client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	rb := &rbacv1.RoleBinding{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: defaultServiceAccount},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "kudod-operators"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: defaultServiceAccount, Namespace: ns}},
	}
	if err := c.Client.Create(ctx, rb); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	await(t, time.Minute, "kudod-operators to aggregate kudod-operators-default", func() (bool, string) {
		role := &rbacv1.ClusterRole{}
		if err := c.Client.Get(ctx, types.NamespacedName{Name: "kudod-operators"}, role); err != nil {
			return false, err.Error()
		}
		return len(role.Rules) > 0, fmt.Sprintf("%d rules", len(role.Rules))
	})
}

// checkImpersonated fails the test unless kudod wrote in each namespace as the service account
// it impersonates there, and never wrote there as itself but for its own Instances and events.
func checkImpersonated(t *testing.T, c *testenv.Cluster, namespaces ...string) {
	t.Helper()
	for _, ns := range namespaces {
		as := "system:serviceaccount:" + ns + ":" + defaultServiceAccount
		impersonated := 0
		for _, e := range c.AuditEvents(t) {
			if e.User.Username != serviceAccount || e.ObjectRef == nil || e.ObjectRef.Namespace != ns {
				continue
			}
			switch {
			case e.ImpersonatedUser != nil && e.ImpersonatedUser.Username == as:
				impersonated++
			case e.ImpersonatedUser == nil && e.ObjectRef.APIGroup != "kudod.dev" && e.ObjectRef.Resource != "events":
				t.Errorf("kudod wrote as itself: %s %s %s/%s", e.Verb, e.ObjectRef.Resource, ns, e.ObjectRef.Name)
			}
		}
		if impersonated == 0 {
			t.Errorf("the audit log shows no request of kudod as %s", as)
		}
	}
}

// checkNothingForbidden fails the test for every request of kudod's ServiceAccount that the
// API server refused, as the simulated cluster's audit log records them: a refused event or
// status write fails no plan, so only the log shows it.
func checkNothingForbidden(t *testing.T, c *testenv.Cluster) {
	t.Helper()
	writes := 0
	for _, e := range c.AuditEvents(t) {
		if e.User.Username != serviceAccount || e.ObjectRef == nil {
			continue
		}
		writes++
		if e.ResponseStatus != nil && e.ResponseStatus.Code == 403 {
			t.Errorf("forbidden to kudod: %s %s %s/%s %s/%s", e.Verb, e.ObjectRef.APIGroup, e.ObjectRef.Resource, e.ObjectRef.Subresource, e.ObjectRef.Namespace, e.ObjectRef.Name)
		}
	}
	if writes == 0 {
		t.Errorf("the audit log has no request by %s: kudod did not run as its ServiceAccount", serviceAccount)
	}
}

// accessPackage is a package with what the community packages create apart from workloads:
// a ServiceAccount, a Role as Kafka's (read pods and services) bound to it in the next step
// (TestServiceAccountAppliesARoleWithItsBinding has both in one task), a Secret, a Pipe task
// whose file is read from pipeDir on this host (the simulated cluster runs exec here), and a
// Deployment mounting the piped ConfigMap.
func accessPackage(pipeDir string) map[string]string {
	const dir = "operators/access/0.1.0/"
	return map[string]string{
		dir + "operator.yaml": `apiVersion: kudo.dev/v1beta1
name: access
operatorVersion: 0.1.0
kubernetesVersion: 1.20.0
tasks:
  - name: identity
    kind: Apply
    spec:
      resources: [serviceaccount.yaml, role.yaml, secret.yaml]
  - name: binding
    kind: Apply
    spec:
      resources: [rolebinding.yaml]
  - name: greeting
    kind: Pipe
    spec:
      pod: pipe-pod.yaml
      pipe:
        - file: ` + pipeDir + `/greeting.txt
          kind: ConfigMap
          key: greeting
  - name: app
    kind: Apply
    spec:
      resources: [deployment.yaml]
plans:
  deploy:
    phases:
      - name: deploy
        steps:
          - name: identity
            tasks: [identity]
          - name: binding
            tasks: [binding]
          - name: greeting
            tasks: [greeting]
          - name: app
            tasks: [app]
`,
		dir + "params.yaml":                   "apiVersion: kudo.dev/v1beta1\nparameters: []\n",
		dir + "templates/serviceaccount.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: {{ .Name }}\n",
		dir + "templates/role.yaml": `apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: {{ .Name }}-role
rules:
  - apiGroups: [""]
    resources: ["pods", "services"]
    verbs: ["get", "list", "watch"]
`,
		dir + "templates/rolebinding.yaml": `apiVersion: rbac.authorization.k8s.io/v1
kind: RoleBinding
metadata:
  name: {{ .Name }}-binding
roleRef:
  apiGroup: rbac.authorization.k8s.io
  kind: Role
  name: {{ .Name }}-role
subjects:
  - kind: ServiceAccount
    name: {{ .Name }}
    namespace: {{ .Namespace }}
`,
		dir + "templates/secret.yaml": "apiVersion: v1\nkind: Secret\nmetadata:\n  name: {{ .Name }}-credentials\nstringData:\n  password: not-a-real-one\n",
		dir + "templates/pipe-pod.yaml": `apiVersion: v1
kind: Pod
metadata:
  name: greeting
spec:
  volumes:
    - name: out
      emptyDir: {}
  initContainers:
    - name: write
      image: busybox
      command: ["sh", "-c", "echo hello > ` + pipeDir + `/greeting.txt"]
      volumeMounts:
        - name: out
          mountPath: ` + pipeDir + `
`,
		dir + "templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Name }}-web
spec:
  replicas: 1
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      serviceAccountName: {{ .Name }}
      containers:
        - name: web
          image: nginx
          volumeMounts:
            - name: greeting
              mountPath: /usr/share/nginx/html
      volumes:
        - name: greeting
          configMap:
            name: {{ .Pipes.greeting }}
`,
	}
}

// serviceAccountKubeconfig writes a kubeconfig that reaches the cluster with a token of
// kudod's ServiceAccount, which is what kudod's pod gets.
func serviceAccountKubeconfig(t *testing.T, c *testenv.Cluster) string {
	t.Helper()
	ctx := context.Background()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "kudod"}}
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptrTo(int64(3600))}}
	if err := c.Client.SubResource("token").Create(ctx, sa, tr); err != nil {
		t.Fatalf("token of ServiceAccount kudod: %v", err)
	}
	ca := c.Config.CAData
	if len(ca) == 0 {
		var err error
		if ca, err = os.ReadFile(c.Config.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["cluster"] = &clientcmdapi.Cluster{Server: c.Config.Host, CertificateAuthorityData: ca}
	kc.AuthInfos["kudod"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["kudod"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: "kudod"}
	kc.CurrentContext = "kudod"
	path := filepath.Join(t.TempDir(), "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		t.Fatal(err)
	}
	return path
}

func ptrTo[T any](v T) *T { return &v }

// runDaemon runs kudod, built as the image builds it, until the test ends, then checks that
// it stops cleanly on SIGTERM, as in a pod. Its log is printed if the test fails.
func runDaemon(t *testing.T, args ...string) {
	t.Helper()
	bin := buildImageBinary(t, "v0.0.0-serviceaccount-test")
	logFile, err := os.Create(filepath.Join(t.TempDir(), "kudod.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("kudod did not stop cleanly on SIGTERM: %v", err)
			}
		case <-time.After(time.Minute):
			_ = cmd.Process.Kill()
			<-exited
			t.Error("kudod did not stop within a minute of SIGTERM")
		}
		if t.Failed() {
			data, _ := os.ReadFile(logFile.Name())
			lines := strings.Split(strings.TrimSpace(string(data)), "\n")
			t.Logf("kudod log, last lines:\n%s", strings.Join(lines[max(0, len(lines)-60):], "\n"))
		}
		_ = logFile.Close()
	})
}

// waitPlan waits until an Instance's deploy plan for revision is COMPLETE; a FATAL_ERROR
// fails the test at once.
func waitPlan(t *testing.T, c *testenv.Cluster, namespace, name, revision string) {
	t.Helper()
	await(t, 4*time.Minute, fmt.Sprintf("deploy of %s/%s to complete", namespace, name), func() (bool, string) {
		inst := &v1alpha1.Instance{}
		if err := c.Client.Get(context.Background(), types.NamespacedName{Namespace: namespace, Name: name}, inst); err != nil {
			return false, err.Error()
		}
		lp := inst.Status.LastPlan
		if lp == nil {
			return false, "no plan yet"
		}
		if lp.Status == v1alpha1.StatusFatalError {
			t.Fatalf("%s/%s: %s FATAL_ERROR: %s", namespace, name, lp.Name, lp.Message)
		}
		return lp.Name == "deploy" && lp.Revision == revision && lp.Status == v1alpha1.StatusComplete,
			fmt.Sprintf("%s %s at %.7s: %s", lp.Name, lp.Status, lp.Revision, lp.Message)
	})
}

// await polls cond until it holds or timeout passes.
func await(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
}
