package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// daemonAccount is the user of kudod's ServiceAccount in the install of deploy/.
const daemonAccount = "system:serviceaccount:kudod-system:kudod"

// TestImpersonation: kudod runs with nothing but the least-privilege RBAC of deploy/ (its own
// ServiceAccount's token, not a cluster admin). A restricted ServiceAccount may manage what
// packages create in namespace team-a only; the instance that names it deploys there. The same
// ServiceAccount's package asking for a ClusterRoleBinding fails FATAL with a message naming
// the account and the verb the API server refused, and writes nothing of its step. The API
// server's audit log shows kudod's requests for the instances impersonating the account, the
// refused dry-run among them, and no write kudod made as itself for them besides their
// Instances and events.
func TestImpersonation(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ctx := context.Background()
	installRBAC(t, c)
	ns := teamNamespace(t, c, "team-a")
	const sa = "deployer"
	user := "system:serviceaccount:" + ns + ":" + sa
	grantOperators(t, c, ns, sa)

	repo := testenv.NewGitRepo(t)
	files := testenv.FixtureOperatorFiles(t, "app", "1.0.0")
	for k, v := range escalatePackage() {
		files[k] = v
	}
	withSA := func(name, operator string) string {
		return instanceFile(ns, name, operator, "", "") + "  serviceAccountName: " + sa + "\n"
	}
	files["instances/app.yaml"] = withSA("app", "app")
	first := repo.Commit("an app as the team's service account", files)
	auditFrom := len(c.AuditEvents(t))
	cfg := daemonConfig(t, serviceAccountKubeconfig(t, c), "file://"+repo.Dir, "    namespaces: [\"team-*\"]\n    allowEmpty: true\n")
	startKudod(t, cfg, "--leader-election-namespace=kudod-system", "--preview-user=kudod-preview")
	waitPlan(t, c, ns, "app", "deploy", v1alpha1.StatusComplete, first, 2*time.Minute)
	if err := c.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "app-config"}, &corev1.ConfigMap{}); err != nil {
		t.Errorf("the app's ConfigMap: %v", err)
	}

	second := repo.Commit("a ClusterRoleBinding", map[string]string{"instances/escalate.yaml": withSA("escalate", "escalate")})
	inst := waitPlan(t, c, ns, "escalate", "deploy", v1alpha1.StatusFatalError, second, 2*time.Minute)
	msg := inst.Status.LastPlan.Message
	for _, want := range []string{user, "cannot patch", "clusterrolebindings"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the plan's message does not name %q: %s", want, msg)
		}
	}
	if err := c.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: "escalate-config"}, &corev1.ConfigMap{}); !apierrors.IsNotFound(err) {
		t.Errorf("the failed step wrote its ConfigMap: %v", err)
	}
	if err := c.Client.Get(ctx, types.NamespacedName{Name: ns + "-escalate"}, &rbacv1.ClusterRoleBinding{}); !apierrors.IsNotFound(err) {
		t.Errorf("the ClusterRoleBinding exists: %v", err)
	}

	// The audit log: kudod's requests for the instances impersonate the account, its dry-runs
	// included, and the API server refused the ClusterRoleBinding to the account.
	var impersonated, dryRuns, refused int
	var own []string
	eventually(t, 30*time.Second, "the refused request in the audit log", func() (bool, string) {
		impersonated, dryRuns, refused, own = 0, 0, 0, nil
		for _, e := range c.AuditEvents(t)[auditFrom:] {
			if e.User.Username != daemonAccount || e.ObjectRef == nil {
				continue
			}
			switch {
			case e.ImpersonatedUser != nil && e.ImpersonatedUser.Username == user:
				impersonated++
				if e.DryRun() {
					dryRuns++
				}
				if e.ObjectRef.Resource == "clusterrolebindings" && e.ResponseStatus != nil && e.ResponseStatus.Code == 403 {
					refused++
				}
			case e.ImpersonatedUser == nil && (e.ObjectRef.Namespace == ns || e.ObjectRef.Resource == "clusterrolebindings") &&
				e.ObjectRef.APIGroup != "kudod.dev" && e.ObjectRef.Resource != "events":
				own = append(own, e.Verb+" "+e.ObjectRef.Resource+" "+e.ObjectRef.Name)
			}
		}
		return refused > 0, fmt.Sprintf("%d impersonated requests, %d refused", impersonated, refused)
	})
	if dryRuns == 0 {
		t.Error("the audit log shows no dry-run kudod sent as " + user)
	}
	if len(own) > 0 {
		t.Errorf("kudod wrote for the instances as itself: %v", own)
	}
}

// escalatePackage is a package whose one step applies a ConfigMap and binds the instance's
// service account to cluster-admin.
func escalatePackage() map[string]string {
	const dir = "operators/escalate/0.1.0/"
	return map[string]string{
		dir + "operator.yaml": `apiVersion: kudo.dev/v1beta1
name: escalate
operatorVersion: 0.1.0
kubernetesVersion: 1.20.0
tasks:
  - name: admin
    kind: Apply
    spec:
      resources: [config.yaml, binding.yaml]
plans:
  deploy:
    phases:
      - name: main
        steps:
          - name: admin
            tasks: [admin]
`,
		dir + "params.yaml":           "apiVersion: kudo.dev/v1beta1\nparameters: []\n",
		dir + "templates/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Name }}-config\ndata:\n  a: b\n",
		dir + "templates/binding.yaml": `apiVersion: rbac.authorization.k8s.io/v1
kind: ClusterRoleBinding
metadata:
  name: {{ .Namespace }}-{{ .Name }}
roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}
subjects: [{kind: ServiceAccount, name: deployer, namespace: "{{ .Namespace }}"}]
`,
	}
}

// installRBAC applies deploy/'s namespace, CRD, ServiceAccount and RBAC (not the daemon's
// Deployment: the test runs kudod itself), as `kubectl apply -k deploy/` would.
func installRBAC(t testing.TB, c *testenv.Cluster) {
	t.Helper()
	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), "../../deploy")
	if err != nil {
		t.Fatalf("kustomize build deploy: %v", err)
	}
	ctx := context.Background()
	for _, r := range res.Resources() {
		switch r.GetKind() {
		case "Deployment", "Service", "ConfigMap":
			continue
		}
		data, err := r.MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		u := &unstructured.Unstructured{}
		if err := u.UnmarshalJSON(data); err != nil {
			t.Fatal(err)
		}
		if err := c.Client.Apply(ctx, client.ApplyConfigurationFromUnstructured(u), client.FieldOwner("kudod-e2e-install"), client.ForceOwnership); err != nil {
			t.Fatalf("apply %s %s: %v", u.GetKind(), u.GetName(), err)
		}
	}
}

// teamNamespace creates a namespace named prefix-<random>, in the lane team-*, and deletes it
// when the test ends.
func teamNamespace(t testing.TB, c *testenv.Cluster, prefix string) string {
	t.Helper()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	name := prefix + "-" + hex.EncodeToString(b)
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
	if err := c.Client.Create(context.Background(), ns); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Client.Delete(context.Background(), ns) })
	return name
}

// grantOperators binds deploy/'s kudod-operators to a service account in its namespace, as
// docs/security.md tells a platform team to, and waits for the controller manager to have
// aggregated kudod-operators.
func grantOperators(t testing.TB, c *testenv.Cluster, ns, sa string) {
	t.Helper()
	ctx := context.Background()
	for _, o := range []client.Object{
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: sa}},
		&rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: "kudod-" + sa},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "kudod-operators"},
			Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: sa, Namespace: ns}},
		},
	} {
		if err := c.Client.Create(ctx, o); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, time.Minute, "kudod-operators to be aggregated", func() (bool, string) {
		role := &rbacv1.ClusterRole{}
		if err := c.Client.Get(ctx, types.NamespacedName{Name: "kudod-operators"}, role); err != nil {
			return false, err.Error()
		}
		return len(role.Rules) > 0, fmt.Sprintf("%d rules", len(role.Rules))
	})
}

// serviceAccountKubeconfig writes a kubeconfig that reaches the cluster with a token of
// kudod's ServiceAccount in kudod-system, as the daemon's pod would.
func serviceAccountKubeconfig(t testing.TB, c *testenv.Cluster) string {
	t.Helper()
	sa := &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Namespace: "kudod-system", Name: "kudod"}}
	expiry := int64(3600)
	tr := &authenticationv1.TokenRequest{Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: &expiry}}
	if err := c.Client.SubResource("token").Create(context.Background(), sa, tr); err != nil {
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
