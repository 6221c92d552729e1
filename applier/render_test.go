package applier

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
)

// These tests render plans against a REST mapper standing in for discovery: no API server.

// clusterKinds is what the fake cluster serves: "group/version/Kind" (core: "v1/Kind"), and
// whether the kind is namespaced.
var clusterKinds = map[string]bool{
	"v1/ConfigMap": true, "v1/Secret": true, "v1/Service": true, "v1/Pod": true, "v1/Namespace": false,
	"apps/v1/Deployment": true, "policy/v1/PodDisruptionBudget": true,
	"rbac.authorization.k8s.io/v1/ClusterRole": false, "rbac.authorization.k8s.io/v1/ClusterRoleBinding": false,
	"apiextensions.k8s.io/v1/CustomResourceDefinition": false, "kudo.dev/v1alpha1/Instance": true,
}

func fakeDiscovery(t *testing.T) meta.RESTMapper {
	t.Helper()
	var gvks []schema.GroupVersionKind
	for s := range clusterKinds {
		gv, kind, _ := strings.Cut(s[:strings.LastIndex(s, "/")]+"|"+s[strings.LastIndex(s, "/")+1:], "|")
		parsed, err := schema.ParseGroupVersion(gv)
		if err != nil {
			t.Fatal(err)
		}
		gvks = append(gvks, parsed.WithKind(kind))
	}
	var gvs []schema.GroupVersion
	for _, gvk := range gvks {
		gvs = append(gvs, gvk.GroupVersion())
	}
	m := meta.NewDefaultRESTMapper(gvs)
	for _, gvk := range gvks {
		scope := meta.RESTScopeRoot
		if clusterKinds[gvk.GroupVersion().String()+"/"+gvk.Kind] {
			scope = meta.RESTScopeNamespace
		}
		m.Add(gvk, scope)
	}
	return m
}

// testPackage builds a package "render-test" from the tasks and plans of operator.yaml,
// params.yaml and templates.
func testPackage(t *testing.T, operator, params string, templates map[string]string) *manifests.Package {
	t.Helper()
	fsys := fstest.MapFS{
		"operator.yaml": {Data: []byte("apiVersion: kudo.dev/v1beta1\nname: render-test\noperatorVersion: 1.0.0\nkubernetesVersion: 1.20.0\n" + operator)},
		"params.yaml":   {Data: []byte(params)},
	}
	for k, v := range templates {
		fsys["templates/"+k] = &fstest.MapFile{Data: []byte(v)}
	}
	p, err := manifests.Load(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func manifest(apiVersion, kind, name string, extra ...string) string {
	return fmt.Sprintf("apiVersion: %s\nkind: %s\nmetadata:\n  name: %s\n%s", apiVersion, kind, name, strings.Join(extra, ""))
}

func crd(group, kind, scope string) string {
	return fmt.Sprintf(`apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: %ss.%s
spec:
  group: %s
  scope: %s
  names: {kind: %s, plural: %ss}
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
`, strings.ToLower(kind), group, group, scope, kind, strings.ToLower(kind))
}

// children finds every child package as the one it holds.
type children struct{ pkg *manifests.Package }

func (c children) FindPackage(context.Context, string, string, string) (*manifests.Package, error) {
	return c.pkg, nil
}

// render renders a plan against the fake discovery.
func render(t *testing.T, pkg *manifests.Package, plan string, params map[string]string, opts prepareOptions, finder PackageFinder) (*RenderedPlan, error) {
	t.Helper()
	inst := &v1alpha1.Instance{}
	inst.Name, inst.Namespace, inst.UID = "inst", "ns", "uid-1"
	r := &planRender{instance: inst, pkg: pkg, params: pkg.EffectiveParams(params), children: finder, mapper: fakeDiscovery(t), prepare: opts}
	return r.render(context.Background(), plan)
}

func refs(objs []*unstructured.Unstructured) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.GetAPIVersion()+" "+objectRef(o))
	}
	return out
}

func sortedInventory(inv Inventory) []string {
	ids := make([]string, 0, len(inv))
	for id := range inv {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}

const everyKind = `tasks:
  - name: app
    kind: Apply
    spec: {resources: [app.yaml]}
  - name: extra
    kind: Toggle
    spec: {parameter: EXTRA, resources: [extra.yaml]}
  - name: metrics
    kind: Toggle
    spec: {parameter: METRICS, resources: [metrics.yaml]}
  - name: remove
    kind: Delete
    spec: {resources: [old.yaml]}
  - name: generate
    kind: Pipe
    spec:
      pod: pod.yaml
      pipe: [{file: /out/token, kind: Secret, key: token}]
  - name: child
    kind: KudoOperator
    spec: {package: child, parameterFile: child.yaml}
  - name: pause
    kind: Dummy
    spec: {done: true}
plans:
  deploy:
    phases:
      - name: main
        steps:
          - name: generate
            tasks: [generate]
          - name: app
            tasks: [app, extra, metrics, remove]
          - name: child
            tasks: [child, pause]
`

const everyKindParams = `parameters:
  - name: EXTRA
    default: "true"
  - name: METRICS
    default: "false"
  - name: REPLICAS
    default: "2"
`

var everyKindTemplates = map[string]string{
	"app.yaml":     manifest("v1", "ConfigMap", "{{ .Name }}-app", "data:\n  token: {{ .Pipes.token }}\n  where: {{ .PlanName }}/{{ .PhaseName }}/{{ .StepName }}\n"),
	"extra.yaml":   manifest("policy/v1beta1", "PodDisruptionBudget", "{{ .Name }}-extra", "spec: {maxUnavailable: 1}\n"),
	"metrics.yaml": manifest("monitoring.coreos.com/v1", "ServiceMonitor", "{{ .Name }}-metrics"),
	"old.yaml":     manifest("v1", "Service", "{{ .Name }}-old"),
	"pod.yaml": `apiVersion: v1
kind: Pod
spec:
  volumes: [{name: out, emptyDir: {}}]
  initContainers:
    - name: init
      image: busybox
      command: [sh, -c, "echo x > /out/token"]
      volumeMounts: [{name: out, mountPath: /out}]
`,
	"child.yaml": "REPLICAS: {{ .Params.REPLICAS | quote }}\n",
}

func childPackage(t *testing.T) *manifests.Package {
	return testPackage(t, "tasks: []\nplans:\n  deploy:\n    phases: []\n", "parameters:\n  - name: REPLICAS\n    default: \"1\"\n", nil)
}

// Every task kind renders into what its step writes, what the inventory records and what
// `kudod render` prints.
func TestRenderEveryTaskKind(t *testing.T) {
	pkg := testPackage(t, everyKind, everyKindParams, everyKindTemplates)
	rp, err := render(t, pkg, "deploy", map[string]string{"REPLICAS": "3"}, prepareOptions{allowClusterScoped: true}, children{childPackage(t)})
	if err != nil {
		t.Fatal(err)
	}
	apply, remove := rp.step("main", "app").batch()
	if got, want := refs(apply), []string{"v1 ConfigMap/ns/inst-app", "policy/v1 PodDisruptionBudget/ns/inst-extra"}; !slices.Equal(got, want) {
		t.Errorf("the app step applies %v, want %v (the PDB upgraded from policy/v1beta1)", got, want)
	}
	// METRICS is off and the cluster serves no ServiceMonitor: there is nothing to delete.
	if got, want := refs(remove), []string{"v1 Service/ns/inst-old"}; !slices.Equal(got, want) {
		t.Errorf("the app step deletes %v, want %v", got, want)
	}
	if got := rp.Warnings; len(got) != 1 || !strings.Contains(got[0], "templates/extra.yaml: PodDisruptionBudget/inst-extra upgraded from policy/v1beta1 to policy/v1") {
		t.Errorf("warnings %q", got)
	}
	cm := apply[0]
	if cm.GetLabels()[LabelInstance] != "inst" || cm.GetLabels()[LabelOperator] != "render-test" || len(cm.GetOwnerReferences()) != 1 {
		t.Errorf("ConfigMap not prepared: labels %v, owners %v", cm.GetLabels(), cm.GetOwnerReferences())
	}
	if where, _, _ := unstructured.NestedString(cm.Object, "data", "where"); where != "deploy/main/app" {
		t.Errorf("rendered for %q, want deploy/main/app", where)
	}
	if token, _, _ := unstructured.NestedString(cm.Object, "data", "token"); token != "inst.deploy.main.generate.generate.token" {
		t.Errorf(".Pipes.token is %q", token)
	}
	if got, want := sortedInventory(rp.Inventory("ns")), []string{
		"ns_inst-app__ConfigMap",
		"ns_inst-child_kudod.dev_Instance",
		"ns_inst-extra_policy_PodDisruptionBudget",
		"ns_inst.deploy.main.generate.generate.token__Secret",
	}; !slices.Equal(got, want) {
		t.Errorf("inventory %v, want %v", got, want)
	}
	if got := refs(rp.Objects()); len(got) != 2 {
		t.Errorf("Objects %v: the applied objects of every step", got)
	}
	child := rp.step("main", "child").tasks[0].task.(*kudoOperatorTask)
	if child.name != "inst-child" || child.parameters["REPLICAS"] != "3" {
		t.Errorf("child %s with parameters %v", child.name, child.parameters)
	}
	pipe := rp.step("main", "generate").tasks[0].task.(*pipeTask)
	if pod := pipe.pod.objects[0]; pod.GetName() == "" || pod.GetNamespace() != "ns" {
		t.Errorf("pipe pod %s not named and placed", objectRef(pod))
	}
	var printed []string
	for _, task := range rp.Tasks() {
		printed = append(printed, fmt.Sprintf("%s/%s %s %q %d", task.Phase, task.Step, task.Task.Name, task.Action, len(task.Templates)))
	}
	want := []string{
		`main/generate generate "" 0`,
		`main/app app "applied" 1`,
		`main/app extra "applied: EXTRA is true" 1`,
		`main/app metrics "deleted: METRICS is false" 1`,
		`main/app remove "deleted" 1`,
		`main/child child "" 0`,
		`main/child pause "" 0`,
	}
	if !slices.Equal(printed, want) {
		t.Errorf("Tasks:\n%s\nwant:\n%s", strings.Join(printed, "\n"), strings.Join(want, "\n"))
	}
}

// Turning on a Toggle whose kind the cluster does not serve fails the render, naming the kind.
func TestRenderToggleOnOfAKindNotServed(t *testing.T) {
	pkg := testPackage(t, everyKind, everyKindParams, everyKindTemplates)
	_, err := render(t, pkg, "deploy", map[string]string{"METRICS": "true"}, prepareOptions{allowClusterScoped: true}, children{childPackage(t)})
	var ns *notServedError
	if !errors.As(err, &ns) {
		t.Fatalf("want a notServedError, got %v", err)
	}
	for _, w := range []string{"plan deploy, phase main, step app, task metrics: templates/metrics.yaml", "ServiceMonitor/inst-metrics", "does not serve monitoring.coreos.com/v1 ServiceMonitor"} {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("error %q does not say %q", err, w)
		}
	}
	// What pruning keeps leaves it out: such an object cannot exist.
	rp, err := render(t, pkg, "deploy", map[string]string{"METRICS": "true"}, prepareOptions{allowClusterScoped: true, dropUnserved: true}, children{childPackage(t)})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := rp.Inventory("ns")["ns_inst-metrics_monitoring.coreos.com_ServiceMonitor"]; ok {
		t.Error("the keep set holds an object of a kind the cluster does not serve")
	}
}

// An offline render prints objects as their templates write them.
func TestRenderOffline(t *testing.T) {
	pkg := testPackage(t, everyKind, everyKindParams, everyKindTemplates)
	rp, err := RenderOffline(context.Background(), pkg, "shop", "prod", "deploy", map[string]string{"METRICS": "true"})
	if err != nil {
		t.Fatal(err)
	}
	apply, _ := rp.step("main", "app").batch()
	if got, want := refs(apply), []string{"v1 ConfigMap/shop-app", "policy/v1beta1 PodDisruptionBudget/shop-extra", "monitoring.coreos.com/v1 ServiceMonitor/shop-metrics"}; !slices.Equal(got, want) {
		t.Errorf("offline render %v, want %v", got, want)
	}
	if len(apply[0].GetLabels()) != 0 || len(rp.Warnings) != 0 {
		t.Errorf("an offline render prepared objects: labels %v, warnings %v", apply[0].GetLabels(), rp.Warnings)
	}
}

// Whether a kind is cluster-scoped comes from discovery: a CRD of the plan speaks only for
// kinds the cluster does not serve, and only when the plan applies it.
func TestScopeComesFromDiscovery(t *testing.T) {
	const ops = `tasks:
  - name: crds
    kind: Apply
    spec: {resources: [crd.yaml]}
  - name: objects
    kind: Apply
    spec: {resources: [objects.yaml]}
  - name: gone
    kind: Delete
    spec: {resources: [gone.yaml]}
plans:
  deploy:
    phases:
      - name: main
        steps:
          - name: crds
            tasks: [crds, gone]
          - name: objects
            tasks: [objects]
`
	tests := []struct {
		name      string
		allow     bool // allowClusterScoped
		templates map[string]string
		wantErr   string
		want      []string // refs of the objects step
	}{
		{
			// Before discovery came first, these two CRDs made CRDs and ClusterRoleBindings
			// namespaced in the plan's eyes, and both got past allowClusterScoped: false.
			name: "decoy CRDs cannot make CRDs or ClusterRoleBinding namespaced",
			templates: map[string]string{
				"crd.yaml":     crd("apiextensions.k8s.io", "CustomResourceDefinition", "Namespaced") + "---\n" + crd("rbac.authorization.k8s.io", "ClusterRoleBinding", "Namespaced"),
				"objects.yaml": manifest("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "admin", "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n"),
				"gone.yaml":    manifest("v1", "ConfigMap", "gone"),
			},
			wantErr: "is cluster-scoped and the daemon does not allow cluster-scoped objects",
		},
		{
			name:  "discovery decides the scope of a kind a CRD of the plan also declares",
			allow: true,
			templates: map[string]string{
				"crd.yaml":     crd("rbac.authorization.k8s.io", "ClusterRoleBinding", "Namespaced"),
				"objects.yaml": manifest("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "admin", "roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: cluster-admin}\n"),
				"gone.yaml":    manifest("v1", "ConfigMap", "gone"),
			},
			want: []string{"rbac.authorization.k8s.io/v1 ClusterRoleBinding/admin"},
		},
		{
			name:  "a CRD the plan applies defines a new namespaced kind",
			allow: true,
			templates: map[string]string{
				"crd.yaml":     crd("example.com", "Widget", "Namespaced"),
				"objects.yaml": manifest("example.com/v1", "Widget", "w"),
				"gone.yaml":    manifest("v1", "ConfigMap", "gone"),
			},
			want: []string{"example.com/v1 Widget/ns/w"},
		},
		{
			name:  "a CRD the plan applies defines a new cluster-scoped kind",
			allow: true,
			templates: map[string]string{
				"crd.yaml":     crd("example.com", "Widget", "Cluster"),
				"objects.yaml": manifest("example.com/v1", "Widget", "w"),
				"gone.yaml":    manifest("v1", "ConfigMap", "gone"),
			},
			want: []string{"example.com/v1 Widget/w"},
		},
		{
			name:  "a CRD the plan deletes defines nothing",
			allow: true,
			templates: map[string]string{
				"crd.yaml":     manifest("v1", "ConfigMap", "config"),
				"gone.yaml":    crd("example.com", "Widget", "Namespaced"),
				"objects.yaml": manifest("example.com/v1", "Widget", "w"),
			},
			wantErr: "the cluster does not serve example.com/v1 Widget",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkg := testPackage(t, ops, "", tt.templates)
			rp, err := render(t, pkg, "deploy", nil, prepareOptions{allowClusterScoped: tt.allow}, nil)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("want an error saying %q, got %v", tt.wantErr, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			apply, _ := rp.step("main", "objects").batch()
			if got := refs(apply); !slices.Equal(got, tt.want) {
				t.Errorf("objects %v, want %v", got, tt.want)
			}
			for _, o := range apply {
				if o.GetNamespace() == "" && len(o.GetOwnerReferences()) > 0 {
					t.Errorf("cluster-scoped %s has an owner in a namespace", objectRef(o))
				}
			}
		})
	}
}

// A plan deleting an object whose kind the cluster serves at another version than the
// template writes deletes it at a version the cluster serves.
func TestRenderDeleteAtAServedVersion(t *testing.T) {
	const ops = `tasks:
  - name: gone
    kind: Delete
    spec: {resources: [gone.yaml]}
plans:
  deploy:
    phases:
      - name: main
        steps:
          - name: gone
            tasks: [gone]
`
	pkg := testPackage(t, ops, "", map[string]string{"gone.yaml": manifest("apps/v1beta9", "Deployment", "web")})
	rp, err := render(t, pkg, "deploy", nil, prepareOptions{allowClusterScoped: true}, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, remove := rp.step("main", "gone").batch()
	if got := refs(remove); !slices.Equal(got, []string{"apps/v1 Deployment/ns/web"}) {
		t.Errorf("deletes %v", got)
	}
}

// A preview asks each task what it would do, in plan order; the last task to apply or delete
// an object decides.
func TestPreviewCollectsWhatEachTaskWouldDo(t *testing.T) {
	const ops = `tasks:
  - name: app
    kind: Apply
    spec: {resources: [app.yaml]}
  - name: remove
    kind: Delete
    spec: {resources: [app.yaml, old.yaml]}
  - name: generate
    kind: Pipe
    spec:
      pod: pod.yaml
      pipe: [{file: /out/token, kind: Secret, key: token}]
  - name: child
    kind: KudoOperator
    spec: {package: child}
plans:
  deploy:
    phases:
      - name: main
        steps:
          - name: first
            tasks: [app, remove, generate]
          - name: again
            tasks: [app, child]
`
	templates := map[string]string{
		"app.yaml": manifest("v1", "ConfigMap", "app"),
		"old.yaml": manifest("v1", "ConfigMap", "old"),
		"pod.yaml": everyKindTemplates["pod.yaml"],
	}
	pkg := testPackage(t, ops, "", templates)
	rp, err := render(t, pkg, "deploy", nil, prepareOptions{allowClusterScoped: true}, children{childPackage(t)})
	if err != nil {
		t.Fatal(err)
	}
	pv := rp.preview("ns")
	var order []string
	for _, e := range pv.order {
		if e.change != nil {
			order = append(order, e.change.Action+" "+e.change.Object)
		} else {
			order = append(order, "apply "+e.id)
		}
	}
	want := []string{"apply ns_app__ConfigMap", "created Secret/ns/inst.deploy.main.first.generate.token", "configured Instance/ns/inst-child"}
	if !slices.Equal(order, want) {
		t.Errorf("order %v, want %v", order, want)
	}
	if _, ok := pv.applied["ns_app__ConfigMap"]; !ok {
		t.Error("the ConfigMap a later step applies again is not applied")
	}
	if got := sortedIDs(pv.deleted); !slices.Equal(got, []string{"ns_old__ConfigMap"}) {
		t.Errorf("deleted %v", got)
	}
}
