package app

import (
	"path/filepath"
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kudod-dev/kudod/manifests"
	"github.com/kudod-dev/kudod/test/testenv"
)

// renderedObjects parses render's output back into objects: it must be a valid YAML stream.
func renderedObjects(t *testing.T, out string) []*unstructured.Unstructured {
	t.Helper()
	objs, err := manifests.ParseObjects("stdout", out)
	if err != nil {
		t.Fatalf("output is not a YAML stream of objects: %v\n%s", err, out)
	}
	return objs
}

func objectNames(objs []*unstructured.Unstructured) []string {
	var out []string
	for _, o := range objs {
		out = append(out, o.GetKind()+"/"+o.GetName())
	}
	return out
}

func TestRenderDefaults(t *testing.T) {
	code, out, errOut := runCLI(t, "render", testenv.FixtureOperator(t, "hello", "1.0.0"))
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	objs := renderedObjects(t, out)
	if len(objs) != 1 || objs[0].GetKind() != "Deployment" {
		t.Fatalf("objects %v", objectNames(objs))
	}
	if r, _, _ := unstructured.NestedInt64(objs[0].Object, "spec", "replicas"); r != 2 {
		t.Errorf("replicas %d, want the default 2", r)
	}
	if !strings.HasPrefix(out, "---\n# Source: templates/deployment.yaml\n") {
		t.Errorf("output does not name the template:\n%s", out)
	}
}

func TestRenderParametersInstanceNamespace(t *testing.T) {
	dir := filepath.Join(manifestsTestdata, "valid/everything")
	code, out, errOut := runCLI(t, "render", dir, "-p", "REPLICAS=5", "--parameter", "LABELS={team: db}", "-p", "PORTS=[1, 2, 3]", "--instance", "shop", "--namespace", "prod")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	objs := renderedObjects(t, out)
	// Every template but the parameterFile (child-params.yaml) and the Pipe pod, sorted by key.
	want := []string{"ConfigMap/shop-config", "Secret/shop-secret", "Job/shop-job", "Service/shop-metrics", "Namespace/prod", "Deployment/shop-app"}
	if got := objectNames(objs); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("objects %v, want %v", got, want)
	}
	dep := objs[5]
	if r, _, _ := unstructured.NestedInt64(dep.Object, "spec", "replicas"); r != 5 {
		t.Errorf("replicas %d", r)
	}
	containers, _, _ := unstructured.NestedSlice(dep.Object, "spec", "template", "spec", "containers")
	ports, _, _ := unstructured.NestedSlice(containers[0].(map[string]any), "ports")
	if len(ports) != 3 {
		t.Errorf("ports %v", ports)
	}
	if got := objs[0].GetLabels(); len(got) != 1 || got["team"] != "db" {
		t.Errorf("labels %v", got)
	}
	if objs[0].GetNamespace() != "prod" {
		t.Errorf("namespace %q", objs[0].GetNamespace())
	}
	// Outside a plan, templates still get the names of pipe artifacts.
	if !strings.Contains(out, "name: shop.deploy.prepare.generate.generate.indexhtml") {
		t.Errorf("pipe artifact name missing:\n%s", out)
	}
}

// With --plan, the resources of the plan's tasks in plan order, each rendered for its step.
func TestRenderPlan(t *testing.T) {
	dir := filepath.Join(manifestsTestdata, "valid/everything")
	code, out, errOut := runCLI(t, "render", dir, "--plan", "deploy", "--instance", "shop")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, errOut)
	}
	objs := renderedObjects(t, out)
	want := []string{"ConfigMap/shop-config", "Secret/shop-secret", "Deployment/shop-app", "Service/shop-metrics"}
	if got := objectNames(objs); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Fatalf("objects %v, want %v", got, want)
	}
	if where, _, _ := unstructured.NestedString(objs[0].Object, "data", "where"); where != "deploy/main/app" {
		t.Errorf(".PlanName/.PhaseName/.StepName rendered as %q", where)
	}
	for _, w := range []string{
		"# plan deploy, phase prepare, step generate, task generate: Pipe task, no objects to render\n",
		"# Source: templates/config.yaml (plan deploy, phase main, step app, task app, applied)\n",
		"# Source: templates/monitor.yaml (plan deploy, phase main, step monitoring, task monitoring, deleted: MONITORING is false)\n",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output does not contain %q:\n%s", w, out)
		}
	}

	code, out, _ = runCLI(t, "render", dir, "--plan", "deploy", "-p", "MONITORING=true")
	if code != 0 || !strings.Contains(out, "task monitoring, applied: MONITORING is true)") {
		t.Errorf("exit %d, Toggle with MONITORING=true:\n%s", code, out)
	}

	code, out, _ = runCLI(t, "render", dir, "--plan", "job")
	if got := objectNames(renderedObjects(t, out)); code != 0 || strings.Join(got, ",") != "Job/everything-instance-job,Job/everything-instance-job" {
		t.Errorf("exit %d, job plan objects %v", code, got)
	}
	if !strings.Contains(out, "task remove-job, deleted)") || !strings.Contains(out, "task run-job, applied)") {
		t.Errorf("job plan output:\n%s", out)
	}
}

func TestRenderErrors(t *testing.T) {
	everything := filepath.Join(manifestsTestdata, "valid/everything")
	required := t.TempDir()
	copyTestPackage(t, filepath.Join(manifestsTestdata, "valid/minimal"), required)
	writeTestFile(t, filepath.Join(required, "params.yaml"), `parameters:
  - name: GREETING
  - name: REPLICAS
    type: integer
    default: 1
  - name: API_TOKEN
    type: integer
    default: 1
    trigger: deploy
`)
	failing := t.TempDir()
	copyTestPackage(t, filepath.Join(manifestsTestdata, "valid/minimal"), failing)
	writeTestFile(t, filepath.Join(failing, "templates/configmap.yaml"), `apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ .Name }}-config
data:
  greeting: {{ .Params.GREETING | quote }}
  replicas: {{ .Params.REPLICAS | quote }}
{{ if eq .Params.GREETING "boom" }}{{ fail "boom requested" }}{{ end }}
`)
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr []string
		not    []string
	}{
		{"unknown parameter", []string{"render", everything, "-p", "replicas=3"}, 1, []string{`Error: unknown parameter "replicas" (did you mean "REPLICAS"?)`}, nil},
		{"invalid value", []string{"render", everything, "-p", "REPLICAS=many"}, 1, []string{`parameter REPLICAS: "many" is not an integer`}, nil},
		{"value outside the enum", []string{"render", everything, "-p", "SIZE=huge"}, 1, []string{`parameter SIZE: value "huge" is not one of the allowed values ["small", "medium", "large"]`}, nil},
		{"sensitive values are masked", []string{"render", required, "-p", "GREETING=hi", "-p", "API_TOKEN=s3cr3t"}, 1, []string{`parameter API_TOKEN: <sensitive> is not an integer`}, []string{"s3cr3t"}},
		{"required parameter without value", []string{"render", required}, 1, []string{"parameter GREETING is required and has no default: give it with -p GREETING=VALUE"}, nil},
		{"unknown plan", []string{"render", everything, "--plan", "nope"}, 1, []string{`the package has no plan "nope" (plans: deploy, job, update)`}, nil},
		{"broken package", []string{"render", filepath.Join(manifestsTestdata, "broken/undefined-parameter")}, 1, []string{`templates/configmap.yaml:8: error: template configmap.yaml uses parameter "FAREWELL"`, "the package has 1 error"}, nil},
		{"a list for a map", []string{"render", everything, "-p", "LABELS=[a]"}, 1, []string{"parameter LABELS:", "is not a map"}, nil},
		{"render error", []string{"render", failing, "-p", "GREETING=boom"}, 1, []string{"Error: render templates/configmap.yaml: configmap.yaml:8:", "error calling fail: boom requested"}, nil},
		{"render error in a plan", []string{"render", failing, "-p", "GREETING=boom", "--plan", "deploy"}, 1, []string{"Error: plan deploy, phase main, step everything, task app: render templates/configmap.yaml: configmap.yaml:8:"}, nil},
		{"Toggle parameter not a boolean", []string{"render", everything, "--plan", "deploy", "-p", "MONITORING=maybe"}, 1, []string{`parameter MONITORING: "maybe" is not a boolean`}, nil},
		{"bad -p syntax", []string{"render", everything, "-p", "REPLICAS"}, 2, []string{`invalid parameter "REPLICAS": want -p NAME=VALUE`}, nil},
		{"no directory", []string{"render"}, 2, []string{"accepts 1 arg(s), received 0"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			if out != "" {
				t.Errorf("stdout is not empty:\n%s", out)
			}
			for _, w := range tt.stderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not contain %q:\n%s", w, errOut)
				}
			}
			for _, w := range tt.not {
				if strings.Contains(errOut, w) {
					t.Errorf("stderr contains %q:\n%s", w, errOut)
				}
			}
		})
	}
}
