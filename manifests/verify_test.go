package manifests

import (
	"errors"
	"io/fs"
	"os"
	"path"
	"strings"
	"testing"
	"testing/fstest"
)

// loadAndVerify loads a package and verifies it: the findings of whichever stage stopped it.
func loadAndVerify(t testing.TB, fsys fs.FS, dir string) Findings {
	t.Helper()
	p, err := Load(fsys, dir)
	if err != nil {
		var findings Findings
		if !errors.As(err, &findings) {
			t.Fatalf("Load(%s) returned %T, want Findings: %v", dir, err, err)
		}
		return findings
	}
	return Verify(p)
}

// The valid test packages verify without a single finding: the broken cases below are each
// one change away from testdata/valid/minimal, so each finding comes from its change.
func TestVerifyValidPackages(t *testing.T) {
	for _, dir := range []string{"minimal", "everything"} {
		t.Run(dir, func(t *testing.T) {
			findings := loadAndVerify(t, os.DirFS("testdata/valid"), dir)
			for _, f := range findings {
				t.Errorf("unexpected %s: %v", f.Severity, f)
			}
		})
	}
}

// Every broken package fails with a specific error naming the file (with the package's path
// in the tree it was loaded from, as in a repository) and, where known, the line.
func TestVerifyBrokenPackages(t *testing.T) {
	tests := []struct {
		dir  string
		file string // relative to the package directory
		line int    // 0: the finding names no line
		msg  string
	}{
		{"missing-operator-yaml", "operator.yaml", 0, "operator package is missing operator.yaml"},
		{"missing-params-yaml", "params.yaml", 0, "operator package is missing params.yaml"},
		{"operator-wrong-apiversion", "operator.yaml", 1, `expecting supported API version kudo.dev/v1beta1 but got "kudo.dev/v1alpha1"`},
		{"operator-invalid-yaml", "operator.yaml", 2, "invalid YAML: mapping values are not allowed"},
		{"params-invalid-yaml", "params.yaml", 5, "invalid YAML: mapping values are not allowed"},
		{"params-wrong-apiversion", "params.yaml", 1, `expecting supported API version kudo.dev/v1beta1 but got "kudo.dev/v2"`},
		{"bad-semver", "operator.yaml", 3, `operatorVersion "one.two" is not semver`},
		{"bad-app-version", "operator.yaml", 5, `appVersion "latest" is not semver`},
		{"missing-kubernetes-version", "operator.yaml", 0, `"kubernetesVersion" is required and must be semver`},
		{"duplicate-parameter", "params.yaml", 9, `parameter "greeting" has a duplicate: "GREETING" at line 3`},
		{"parameter-invalid-char", "params.yaml", 9, `parameter "COLOR,SIZE" contains invalid character ','`},
		{"undefined-parameter", "templates/configmap.yaml", 8, `uses parameter "FAREWELL", which is not defined in params.yaml`},
		{"unknown-implicit-variable", "templates/configmap.yaml", 8, `template configmap.yaml defines an invalid implicit parameter "Foo"`},
		{"task-missing-template", "operator.yaml", 6, `task "app" names resource "secret.yaml", which is not in templates/`},
		{"plan-unknown-task", "operator.yaml", 18, `task "ghost" in plan "deploy" (phase "main", step "everything") is not defined`},
		{"trigger-unknown-plan", "params.yaml", 3, `parameter "GREETING" triggers plan "reconfigure", which is not defined`},
		{"no-deploy-plan", "operator.yaml", 11, `operator has no "deploy" plan`},
		{"immutable-without-default", "params.yaml", 9, `parameter "STORAGE_CLASS" is immutable but neither required nor given a default`},
		{"enum-default-outside", "params.yaml", 9, `parameter "SIZE" has a default that is not in its enum: value "medium" is not one of the allowed values ["small", "large"]`},
		{"enum-empty", "params.yaml", 9, `parameter "SIZE" has an empty enum`},
		{"integer-bad-default", "params.yaml", 6, `parameter "REPLICAS" has an invalid default for type integer: "1.5" (a number) is not an integer`},
		{"boolean-bad-default", "params.yaml", 9, `parameter "ENABLED" has an invalid default for type boolean`},
		{"unknown-parameter-type", "params.yaml", 6, `parameter "REPLICAS" has unknown type "long"`},
		{"template-syntax-error", "templates/configmap.yaml", 7, `template does not parse: unexpected "}" in operand`},
		{"template-exec-error", "templates/configmap.yaml", 7, `template does not render with default parameters: executing "configmap.yaml" at <.Params.REPLICAS.count>`},
		{"template-invalid-yaml", "templates/configmap.yaml", 0, "does not render to Kubernetes objects with default parameters (lines of the rendered output): document 1: line 8: did not find expected ',' or ']'"},
		{"object-without-kind", "templates/configmap.yaml", 0, "document 1: line 1: object without kind"},
		{"object-without-name", "templates/configmap.yaml", 0, "object 1 (ConfigMap) has no metadata.name"},
		{"namespace-outside-manifest", "templates/namespace.yaml", 2, "template holds a kind: Namespace: only the namespaceManifest template may"},
		{"namespace-manifest-missing", "operator.yaml", 21, `namespaceManifest "namespace.yaml" is not in templates/`},
		{"namespace-manifest-not-namespace", "templates/ns.yaml", 0, "namespaceManifest must render to exactly one Namespace, renders to [ConfigMap]"},
		{"unknown-task-kind", "operator.yaml", 6, `task "app" has unknown kind "Deploy"`},
		{"apply-without-resources", "operator.yaml", 11, `task "nothing" (Apply) has no resources`},
		{"toggle-without-parameter", "operator.yaml", 6, `task "app" (Toggle) has no parameter`},
		{"toggle-undefined-parameter", "operator.yaml", 6, `task "app" (Toggle) names parameter "ENABLED", which is not defined`},
		{"toggle-non-boolean-default", "operator.yaml", 6, `task "app" (Toggle) parameter "GREETING" has default "hello", which is not a boolean`},
		{"pipe-bad-key", "operator.yaml", 6, `task "gen" (Pipe) pipe 1 has key "greeting.txt", which does not match`},
		{"pipe-both-files", "operator.yaml", 6, `task "gen" (Pipe) pipe 1 must set exactly one of file and envFile`},
		{"pipe-pod-missing", "operator.yaml", 6, `task "gen" names pod template "generator.yaml", which is not in templates/`},
		{"pipe-pod-with-containers", "templates/pipe-pod.yaml", 0, `pod template of Pipe task "gen": must not have containers`},
		{"pipe-unknown-key", "templates/configmap.yaml", 8, `uses pipe key "greeting", which no Pipe task of any plan produces`},
		{"kudooperator-without-package", "operator.yaml", 11, `task "child" (KudoOperator) has no package`},
		{"parameter-file-missing", "operator.yaml", 11, `task "child" names parameterFile "child-params.yaml", which is not in templates/`},
		{"parameter-file-not-map", "templates/child-params.yaml", 0, "parameterFile must render to a YAML map of parameter values, renders to a list"},
		{"duplicate-task-name", "operator.yaml", 11, `task "app" is defined twice (first at line 6)`},
		{"bad-strategy", "operator.yaml", 12, `plan "deploy" has strategy "sequential": only "serial" and "parallel" are supported`},
		{"duplicate-phase-name", "operator.yaml", 21, `plan "deploy" has two phases named "main" (first at line 15)`},
		{"enum-wrong-type", "params.yaml", 9, `parameter "COUNT": enum value "two" is not a valid integer`},
		{"group-undefined", "params.yaml", 9, `parameter "SIZE" is in group "sizing", which is not defined in groups`},
		{"advanced-required-without-default", "params.yaml", 9, `parameter "TUNING" is advanced and required but has no default`},
		{"phase-bad-strategy", "operator.yaml", 15, `plan "deploy" phase "main" has strategy "random": only "serial" and "parallel" are supported`},
		{"step-without-name", "operator.yaml", 18, `plan "deploy" phase "main" has a step without a name`},
		{"pipe-bad-kind", "operator.yaml", 6, `task "gen" (Pipe) pipe 1 has kind "Volume": only Secret and ConfigMap are supported`},
		{"pipe-key-twice", "operator.yaml", 28, `plan "deploy" produces pipe key "greeting" twice (tasks "gen" and "gen-again")`},
		{"disabled-function", "templates/configmap.yaml", 8, "template configmap.yaml calls env, which kudod does not allow: it would read the daemon's environment"},
	}
	seen := map[string]bool{}
	for _, tt := range tests {
		seen[tt.dir] = true
		t.Run(tt.dir, func(t *testing.T) {
			findings := loadAndVerify(t, os.DirFS("testdata/broken"), tt.dir)
			want := path.Join(tt.dir, tt.file)
			for _, f := range findings.Errors() {
				if f.File == want && f.Line == tt.line && strings.Contains(f.Message, tt.msg) {
					return
				}
			}
			t.Errorf("no error %s:%d: ...%s...; got:", want, tt.line, tt.msg)
			for _, f := range findings {
				t.Errorf("  %s %v", f.Severity, f)
			}
		})
	}
	// Every case in testdata is in the table, so none is left unchecked.
	entries, err := os.ReadDir("testdata/broken")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !seen[e.Name()] {
			t.Errorf("testdata/broken/%s has no row in the table", e.Name())
		}
	}
	if len(tests) < 25 {
		t.Errorf("only %d broken packages", len(tests))
	}
}

// Warnings do not fail a package: unused tasks, templates and parameters, and a strategy
// whose absence changes behaviour from KUDO's.
func TestVerifyWarnings(t *testing.T) {
	op := `name: w
operatorVersion: 0.1.0
kubernetesVersion: 1.20.0
tasks:
  - name: app
    kind: Apply
    spec:
      resources: [a.yaml, b.yaml]
  - name: spare
    kind: Dummy
plans:
  deploy:
    phases:
      - name: one
        steps:
          - name: a
            tasks: [app]
          - name: b
            tasks: [app]
      - name: two
        strategy: serial
        steps:
          - name: c
            tasks: [app]
`
	params := `parameters:
  - name: USED
    default: x
  - name: UNUSED
    default: y
  - name: TRIGGERED
    default: z
    trigger: deploy
  - name: BY_INDEX
    default: w
`
	obj := func(name string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "\ndata:\n  a: {{ .Params.USED }}\n  b: {{ index .Params \"BY_INDEX\" }}\n  now: {{ now | quote }}\n"
	}
	fsys := fstest.MapFS{
		"operator.yaml":     {Data: []byte(op)},
		"params.yaml":       {Data: []byte(params)},
		"templates/a.yaml":  {Data: []byte(obj("a"))},
		"templates/b.yaml":  {Data: []byte(obj("b"))},
		"templates/c.yaml":  {Data: []byte(obj("c"))},
		"templates/c.yml":   {Data: []byte("{{ ignored")},
		"templates/README":  {Data: []byte("ignored")},
		"other/config.yaml": {Data: []byte("{{ ignored")},
	}
	p, err := Load(fsys, ".")
	if err != nil {
		t.Fatal(err)
	}
	findings := Verify(p)
	if findings.HasErrors() {
		t.Fatalf("errors: %v", findings.Errors())
	}
	got := map[string]bool{}
	for _, f := range findings.Warnings() {
		got[f.Error()] = true
	}
	for _, want := range []string{
		`operator.yaml:9: task "spare" defined but not used`,
		`templates/c.yaml: template "c.yaml" is not used by any task`,
		`params.yaml:4: parameter "UNUSED" defined but not used`,
		`operator.yaml:12: plan "deploy" has no strategy: kudod runs its 2 phases one after another (serial), KUDO ran them in parallel`,
		`operator.yaml:14: plan "deploy" phase "one" has no strategy: kudod runs its 2 steps one after another (serial), KUDO ran them in parallel`,
		`templates/a.yaml:8: template a.yaml calls now, whose result changes on every render: kudod re-renders templates for every plan and drift check, so the objects never settle`,
	} {
		if !got[want] {
			t.Errorf("missing warning %q", want)
		}
	}
	if len(findings) != 8 { // the 6 above, and now in b.yaml and c.yaml
		t.Errorf("got %d findings, want 8:\n%v", len(findings), strings.ReplaceAll(findings.Error(), "; ", "\n"))
	}
	for i := 1; i < len(findings); i++ {
		a, b := findings[i-1], findings[i]
		if a.File > b.File || a.File == b.File && a.Line > b.Line {
			t.Errorf("findings not sorted: %v before %v", a, b)
		}
	}
}
