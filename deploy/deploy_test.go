package deploy_test

import (
	"context"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/kustomize/api/krusty"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kudod-dev/kudod/cmd/kudod/app"
	"github.com/kudod-dev/kudod/deploy"
	"github.com/kudod-dev/kudod/internal/config"
	"github.com/kudod-dev/kudod/test/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const namespace = "kudod-system"

// install is what `kubectl apply -k deploy/` applies.
type install struct {
	objects []*unstructured.Unstructured
}

// build runs kustomize on this directory, as `kubectl apply -k deploy/` does.
func build(t testing.TB) *install {
	t.Helper()
	return kustomize(t, ".")
}

// kustomize builds the kustomization in dir.
func kustomize(t testing.TB, dir string) *install {
	t.Helper()
	resources, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(filesys.MakeFsOnDisk(), dir)
	if err != nil {
		t.Fatalf("kustomize build %s: %v", dir, err)
	}
	in := &install{}
	for _, r := range resources.Resources() {
		data, err := r.MarshalJSON()
		if err != nil {
			t.Fatalf("kustomize build %s: %s %s: %v", dir, r.GetKind(), r.GetName(), err)
		}
		in.objects = append(in.objects, jsonObject(t, data))
	}
	return in
}

// jsonObject reads an object that kustomize built. It goes through JSON because kyaml's maps
// hold ints where unstructured objects hold int64s.
func jsonObject(t testing.TB, data []byte) *unstructured.Unstructured {
	t.Helper()
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		t.Fatalf("kustomize output: %v", err)
	}
	return u
}

// find returns the object of a kind and name; the test fails if there is none.
func (in *install) find(t testing.TB, kind, name string) *unstructured.Unstructured {
	t.Helper()
	for _, o := range in.objects {
		if o.GetKind() == kind && o.GetName() == name {
			return o
		}
	}
	t.Fatalf("the install has no %s %s", kind, name)
	return nil
}

// decode converts an object of the install to its typed form.
func decode[T any](t testing.TB, u *unstructured.Unstructured) *T {
	t.Helper()
	var v T
	if err := runtime.DefaultUnstructuredConverter.FromUnstructuredWithValidation(u.Object, &v, true); err != nil {
		t.Fatalf("%s %s: %v", u.GetKind(), u.GetName(), err)
	}
	return &v
}

// deployment returns the daemon's Deployment (kudod, or <prefix>kudod in a shard).
func (in *install) deployment(t testing.TB) *appsv1.Deployment {
	t.Helper()
	for _, o := range in.objects {
		if o.GetKind() == "Deployment" && strings.HasSuffix(o.GetName(), "kudod") {
			return decode[appsv1.Deployment](t, o)
		}
	}
	t.Fatal("the install has no kudod Deployment")
	return nil
}

// TestInstallHoldsEveryPart: the install creates the namespace, the CRD exactly as the daemon
// embeds it, the ServiceAccount, the RBAC, the Deployment, both Services and the configuration,
// and puts every namespaced object in kudod-system.
func TestInstallHoldsEveryPart(t *testing.T) {
	in := build(t)
	want := []string{
		"Namespace/kudod-system",
		"CustomResourceDefinition/instances.kudod.dev",
		"ServiceAccount/kudod",
		"ClusterRole/kudod-manager", "ClusterRoleBinding/kudod-manager",
		"ClusterRole/kudod-impersonator", "ClusterRoleBinding/kudod-impersonator",
		"Role/kudod-leader-election", "RoleBinding/kudod-leader-election",
		"ClusterRole/kudod-operators", "ClusterRole/kudod-operators-default",
		"ClusterRole/kudod-preview", "ClusterRoleBinding/kudod-preview",
		"ValidatingAdmissionPolicy/kudod-preview-dry-run-only", "ValidatingAdmissionPolicyBinding/kudod-preview-dry-run-only",
		"ClusterRole/kudod-view",
		"Deployment/kudod", "Service/kudod-metrics", "Service/kudod-webhook", "ConfigMap/kudod-config-",
	}
	var got []string
	for _, o := range in.objects {
		id := o.GetKind() + "/" + o.GetName()
		if o.GetKind() == "ConfigMap" {
			id = o.GetKind() + "/" + strings.TrimRight(o.GetName(), "abcdefghijklmnopqrstuvwxyz0123456789") // the content hash
		}
		got = append(got, id)
		clusterScoped := slices.Contains([]string{"Namespace", "CustomResourceDefinition", "ClusterRole", "ClusterRoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}, o.GetKind())
		if !clusterScoped && o.GetNamespace() != namespace {
			t.Errorf("%s is in namespace %q, want %s", id, o.GetNamespace(), namespace)
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("objects:\n got  %v\n want %v", got, want)
	}

	embedded := &apiextensionsv1.CustomResourceDefinition{}
	if err := sigsyaml.UnmarshalStrict(deploy.InstanceCRD, embedded); err != nil {
		t.Fatal(err)
	}
	installed := decode[apiextensionsv1.CustomResourceDefinition](t, in.find(t, "CustomResourceDefinition", "instances.kudod.dev"))
	if !equality.Semantic.DeepEqual(installed.Spec, embedded.Spec) {
		t.Error("the install's CRD differs from the one the daemon embeds (deploy/crd)")
	}
}

// TestExampleConfigurationIsValid: the ConfigMap the Deployment mounts holds a kudod.yaml that
// config.Parse accepts, at the path the daemon's --config flag names.
func TestExampleConfigurationIsValid(t *testing.T) {
	in := build(t)
	dep := in.deployment(t)
	pod := dep.Spec.Template.Spec
	var cmName, mountPath string
	for _, v := range pod.Volumes {
		if v.ConfigMap != nil {
			cmName = v.ConfigMap.Name
			for _, m := range pod.Containers[0].VolumeMounts {
				if m.Name == v.Name {
					mountPath = m.MountPath
				}
			}
		}
	}
	if cmName == "" || mountPath == "" {
		t.Fatalf("the Deployment mounts no ConfigMap: volumes %+v", pod.Volumes)
	}
	configFile := flagValue(pod.Containers[0].Args, "--config")
	if path.Dir(configFile) != mountPath {
		t.Fatalf("--config=%s is not in the ConfigMap's mount %s", configFile, mountPath)
	}
	cm := decode[corev1.ConfigMap](t, in.find(t, "ConfigMap", cmName))
	data, ok := cm.Data[path.Base(configFile)]
	if !ok {
		t.Fatalf("ConfigMap %s has no key %s; keys: %v", cmName, path.Base(configFile), cm.Data)
	}
	cfg, err := config.Parse([]byte(data), configFile)
	if err != nil {
		t.Fatalf("the example kudod.yaml is invalid:\n%v", err)
	}
	if len(cfg.Repositories) != 1 || cfg.Cluster.Kubeconfig != "" {
		t.Errorf("example configuration: %d repositories, kubeconfig %q; want one repository and the in-cluster connection", len(cfg.Repositories), cfg.Cluster.Kubeconfig)
	}
}

// defaultServiceAccount is the service account the install's plans run as.
const defaultServiceAccount = "kudod-deployer"

// envValue returns the value of an environment variable of a container ("" when absent).
func envValue(env []corev1.EnvVar, name string) string {
	for _, e := range env {
		if e.Name == name {
			return e.Value
		}
	}
	return ""
}

// flagValue returns the value of --name=value in args ("" when absent).
func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

// TestDeploymentArgumentsAreKudodFlags: `kudod run` accepts every argument the Deployment
// passes, so a renamed flag breaks this test rather than the install.
func TestDeploymentArgumentsAreKudodFlags(t *testing.T) {
	c := build(t).deployment(t).Spec.Template.Spec.Containers[0]
	var args []string
	for _, a := range c.Args {
		args = append(args, strings.ReplaceAll(a, "$(POD_NAMESPACE)", namespace))
	}
	if len(args) == 0 || args[0] != "run" {
		t.Fatalf("args %v, want `run` and its flags", c.Args)
	}
	if code := app.Execute(context.Background(), append(args, "--help"), io.Discard, io.Discard); code != 0 {
		t.Errorf("kudod %s --help exited %d: the Deployment passes a flag kudod does not know", strings.Join(args, " "), code)
	}
	for flag, want := range map[string]string{
		"--leader-elect": "true", "--metrics-bind-address": ":8080", "--health-probe-bind-address": ":8081",
		"--webhook-bind-address": ":9292", "--leader-election-namespace": "$(POD_NAMESPACE)",
		"--default-service-account": "$(KUDOD_DEFAULT_SERVICE_ACCOUNT)", "--preview-user": "kudod-preview",
	} {
		if got := flagValue(c.Args, flag); got != want {
			t.Errorf("%s=%q, want %q", flag, got, want)
		}
	}
	if ns := c.Env[slices.IndexFunc(c.Env, func(e corev1.EnvVar) bool { return e.Name == "POD_NAMESPACE" })]; ns.ValueFrom == nil || ns.ValueFrom.FieldRef.FieldPath != "metadata.namespace" {
		t.Errorf("POD_NAMESPACE is not the pod's namespace: %+v", ns)
	}
	if sa := envValue(c.Env, "KUDOD_DEFAULT_SERVICE_ACCOUNT"); sa != defaultServiceAccount {
		t.Errorf("KUDOD_DEFAULT_SERVICE_ACCOUNT=%q, want %s", sa, defaultServiceAccount)
	}
}

// TestDeploymentIsHardened: non-root, read-only root filesystem, no privilege escalation, no
// capabilities, the runtime's seccomp profile, requests and limits, probes on the health
// port, and the named ports the Services select.
func TestDeploymentIsHardened(t *testing.T) {
	dep := build(t).deployment(t)
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 1 {
		t.Errorf("replicas %v, want 1", dep.Spec.Replicas)
	}
	pod := dep.Spec.Template.Spec
	if pod.ServiceAccountName != "kudod" {
		t.Errorf("serviceAccountName %q, want kudod", pod.ServiceAccountName)
	}
	if psc := pod.SecurityContext; psc == nil || psc.RunAsNonRoot == nil || !*psc.RunAsNonRoot ||
		psc.SeccompProfile == nil || psc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("pod securityContext %+v: want runAsNonRoot and the RuntimeDefault seccomp profile", psc)
	}
	if len(pod.Containers) != 1 {
		t.Fatalf("%d containers, want 1", len(pod.Containers))
	}
	c := pod.Containers[0]
	sc := c.SecurityContext
	switch {
	case sc == nil:
		t.Fatal("the container has no securityContext")
	case sc.RunAsNonRoot == nil || !*sc.RunAsNonRoot:
		t.Error("container: runAsNonRoot is not true")
	case sc.RunAsUser == nil || *sc.RunAsUser == 0:
		t.Error("container: runAsUser is not a non-root id")
	case sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem:
		t.Error("container: readOnlyRootFilesystem is not true")
	case sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation:
		t.Error("container: allowPrivilegeEscalation is not false")
	case sc.Capabilities == nil || !slices.Equal(sc.Capabilities.Drop, []corev1.Capability{"ALL"}) || len(sc.Capabilities.Add) > 0:
		t.Errorf("container capabilities %+v, want drop [ALL] and nothing added", sc.Capabilities)
	case sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault:
		t.Error("container: seccompProfile is not RuntimeDefault")
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		req, lim := c.Resources.Requests[r], c.Resources.Limits[r]
		if req.IsZero() || lim.IsZero() || req.Cmp(lim) > 0 {
			t.Errorf("%s: request %s, limit %s; want both, request <= limit", r, req.String(), lim.String())
		}
	}
	ports := map[string]int32{}
	for _, p := range c.Ports {
		ports[p.Name] = p.ContainerPort
	}
	if want := map[string]int32{"metrics": 8080, "healthz": 8081, "webhook": 9292}; !equality.Semantic.DeepEqual(ports, want) {
		t.Errorf("ports %v, want %v", ports, want)
	}
	for name, probe := range map[string]struct {
		p    *corev1.Probe
		path string
	}{"liveness": {c.LivenessProbe, "/healthz"}, "readiness": {c.ReadinessProbe, "/readyz"}} {
		if probe.p == nil || probe.p.HTTPGet == nil || probe.p.HTTPGet.Path != probe.path || probe.p.HTTPGet.Port != intstr.FromString("healthz") {
			t.Errorf("%s probe %+v, want GET %s on the healthz port", name, probe.p, probe.path)
		}
	}
	// The git cache needs a writable directory on a read-only root filesystem.
	cacheDir := flagValue(c.Args, "--cache-dir")
	writable := false
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Volumes {
			if v.Name == m.Name && v.EmptyDir != nil && !m.ReadOnly && (cacheDir == m.MountPath || strings.HasPrefix(cacheDir, m.MountPath+"/")) {
				writable = true
			}
		}
	}
	if m := slices.IndexFunc(c.VolumeMounts, func(m corev1.VolumeMount) bool { return m.MountPath == "/tmp" }); m < 0 || !writable {
		t.Errorf("--cache-dir=%s is not on an emptyDir mounted at /tmp: mounts %+v", cacheDir, c.VolumeMounts)
	}
}

// TestServicesReachTheDaemon: the metrics Service and the webhook Service (9292) select the
// daemon's pods and target its named ports.
func TestServicesReachTheDaemon(t *testing.T) {
	in := build(t)
	podLabels := in.deployment(t).Spec.Template.Labels
	for name, port := range map[string]int32{"kudod-metrics": 8080, "kudod-webhook": 9292} {
		svc := decode[corev1.Service](t, in.find(t, "Service", name))
		for k, v := range svc.Spec.Selector {
			if podLabels[k] != v {
				t.Errorf("Service %s selects %s=%s, which the daemon's pods lack", name, k, v)
			}
		}
		if len(svc.Spec.Selector) == 0 || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].Port != port {
			t.Errorf("Service %s: selector %v, ports %+v; want port %d", name, svc.Spec.Selector, svc.Spec.Ports, port)
		}
	}
}

// TestRolesGrantNoWildcards: no rule of any role uses `*`, and kudod holds none of the verbs
// that let it hand out more than it has (bind, escalate), and impersonate only in
// kudod-impersonator: service accounts, and the preview user by name.
func TestRolesGrantNoWildcards(t *testing.T) {
	in := build(t)
	roles := 0
	for _, o := range in.objects {
		var rules []rbacv1.PolicyRule
		switch o.GetKind() {
		case "ClusterRole":
			rules = decode[rbacv1.ClusterRole](t, o).Rules
		case "Role":
			rules = decode[rbacv1.Role](t, o).Rules
		default:
			continue
		}
		roles++
		for i, r := range rules {
			for _, list := range [][]string{r.Verbs, r.Resources, r.APIGroups, r.NonResourceURLs} {
				if slices.Contains(list, "*") {
					t.Errorf("%s %s rule %d uses *: %+v", o.GetKind(), o.GetName(), i, r)
				}
			}
			for _, v := range []string{"bind", "escalate", "impersonate"} {
				if slices.Contains(r.Verbs, v) && (v != "impersonate" || o.GetName() != "kudod-impersonator") {
					t.Errorf("%s %s rule %d grants %s: %+v", o.GetKind(), o.GetName(), i, v, r)
				}
			}
		}
	}
	if roles < 7 {
		t.Errorf("found %d roles, want kudod-manager, kudod-impersonator, kudod-leader-election, kudod-operators, kudod-operators-default, kudod-preview and kudod-view", roles)
	}
	imp := decode[rbacv1.ClusterRole](t, in.find(t, "ClusterRole", "kudod-impersonator"))
	want := []rbacv1.PolicyRule{
		{APIGroups: []string{""}, Resources: []string{"serviceaccounts"}, Verbs: []string{"impersonate"}},
		{APIGroups: []string{""}, Resources: []string{"users"}, ResourceNames: []string{"kudod-preview"}, Verbs: []string{"impersonate"}},
	}
	if !equality.Semantic.DeepEqual(imp.Rules, want) {
		t.Errorf("kudod-impersonator rules %+v, want %+v", imp.Rules, want)
	}
	for _, o := range in.objects {
		if k := o.GetKind(); (k == "ClusterRoleBinding" || k == "RoleBinding") && decode[rbacv1.ClusterRoleBinding](t, o).RoleRef.Name == "kudod-operators" {
			t.Errorf("%s %s binds kudod-operators: the least-privilege install binds it to nobody", k, o.GetName())
		}
	}
	agg := decode[rbacv1.ClusterRole](t, in.find(t, "ClusterRole", "kudod-operators"))
	def := in.find(t, "ClusterRole", "kudod-operators-default")
	if agg.AggregationRule == nil || len(agg.AggregationRule.ClusterRoleSelectors) != 1 ||
		agg.AggregationRule.ClusterRoleSelectors[0].MatchLabels["kudod.dev/aggregate-to-manager"] != "true" ||
		def.GetLabels()["kudod.dev/aggregate-to-manager"] != "true" {
		t.Errorf("kudod-operators must aggregate the ClusterRoles labelled kudod.dev/aggregate-to-manager=true, kudod-operators-default among them: %+v, labels %v", agg.AggregationRule, def.GetLabels())
	}
}
