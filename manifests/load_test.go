package manifests

import (
	"errors"
	"strings"
	"testing"
	"testing/fstest"
)

func mapFS(files map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, data := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(data)}
	}
	return fsys
}

const loadOperator = `name: demo
operatorVersion: 0.1.0
kubernetesVersion: 1.20.0
tasks:
  - name: app
    kind: Apply
    spec:
      resources: [a.yaml, sub/dir/b.yaml]
plans:
  deploy:
    strategy: serial
    phases:
      - name: main
        steps:
          - name: one
            tasks: [app]
  empty: {}
  null-plan:
`

const loadParams = `parameters:
  - name: INT_UNQUOTED
    type: integer
    default: 1
  - name: BIG
    default: 1000000
  - name: BIG_INT
    type: integer
    default: 1000000
  - name: FLOAT
    type: number
    default: 1.50
  - name: QUOTED
    default: "007"
  - name: BOOL
    type: boolean
    default: false
  - name: OPTIONAL
    required: false
  - name: NULL_DEFAULT
    default: ~
  - name: LIST
    type: array
    default: [a, 2]
  - name: MAP
    type: map
    default: {b: 1, a: x}
`

// The loader reads what KUDO reads, with KUDO's defaults, and keeps parameter values as
// written: an unquoted 1000000 stays "1000000" (KUDO turned it into "1e+06").
func TestLoadPackage(t *testing.T) {
	p, err := Load(mapFS(map[string]string{
		"repo/pkg/operator.yaml":            loadOperator,
		"repo/pkg/params.yaml":              loadParams,
		"repo/pkg/templates/a.yaml":         "a",
		"repo/pkg/templates/sub/dir/b.yaml": "b",
		"repo/pkg/templates/ignored.yml":    "KUDO reads only .yaml",
		"repo/pkg/templates/notes.txt":      "ignored",
		"repo/pkg/other/c.yaml":             "outside templates/",
		"repo/pkg/docs/operator.yaml":       "not at the package root",
		"repo/unrelated/templates/d.yaml":   "another directory",
	}), "repo/pkg")
	if err != nil {
		t.Fatal(err)
	}
	if p.APIVersion != DefaultAPIVersion || p.ParamsAPIVersion != DefaultAPIVersion {
		t.Errorf("apiVersions %q, %q: want the default %s", p.APIVersion, p.ParamsAPIVersion, DefaultAPIVersion)
	}
	if got := strings.Join(p.TemplateKeys(), ","); got != "a.yaml,sub/dir/b.yaml" {
		t.Errorf("templates %s", got)
	}
	if got := p.Templates["sub/dir/b.yaml"].Path; got != "repo/pkg/templates/sub/dir/b.yaml" {
		t.Errorf("template path %s", got)
	}
	if p.OperatorFilePath() != "repo/pkg/operator.yaml" || p.ParamsFilePath() != "repo/pkg/params.yaml" || p.TemplatePath("a.yaml") != "repo/pkg/templates/a.yaml" {
		t.Errorf("paths %s %s %s", p.OperatorFilePath(), p.ParamsFilePath(), p.TemplatePath("a.yaml"))
	}
	if got := strings.Join(p.PlanNames(), ","); got != "deploy,empty,null-plan" {
		t.Errorf("plans %s", got)
	}
	if n := len(p.Plans["empty"].Phases) + len(p.Plans["null-plan"].Phases); n != 0 {
		t.Errorf("empty plans have %d phases", n)
	}
	d := p.Plans["deploy"]
	if d.Line != 10 || d.Phases[0].Line != 13 || d.Phases[0].Steps[0].Line != 15 || p.Tasks[0].Line != 5 {
		t.Errorf("lines: plan %d phase %d step %d task %d", d.Line, d.Phases[0].Line, d.Phases[0].Steps[0].Line, p.Tasks[0].Line)
	}
	if d.Strategy != StrategySerial || d.Phases[0].Strategy != "" {
		t.Errorf("strategies %q %q: the loader keeps what is written", d.Strategy, d.Phases[0].Strategy)
	}

	tests := []struct {
		name     string
		text     string
		kind     ValueKind
		noValue  bool
		required bool
		line     int
	}{
		{"INT_UNQUOTED", "1", KindInt, false, true, 2},
		{"BIG", "1000000", KindInt, false, true, 5},
		{"BIG_INT", "1000000", KindInt, false, true, 7},
		{"FLOAT", "1.50", KindFloat, false, true, 10},
		{"QUOTED", "007", KindString, false, true, 13},
		{"BOOL", "false", KindBool, false, true, 15},
		{"OPTIONAL", "", 0, true, false, 18},
		{"NULL_DEFAULT", "", 0, true, true, 20},
		{"LIST", "- a\n- 2\n", KindArray, false, true, 22},
		{"MAP", "a: x\nb: 1\n", KindMap, false, true, 25},
	}
	for _, tt := range tests {
		par := p.Parameter(tt.name)
		if par == nil {
			t.Errorf("parameter %s missing", tt.name)
			continue
		}
		if par.Required != tt.required || par.Line != tt.line {
			t.Errorf("%s: required %v line %d, want %v %d", tt.name, par.Required, par.Line, tt.required, tt.line)
		}
		if tt.noValue {
			if par.Default != nil {
				t.Errorf("%s: default %+v, want none", tt.name, *par.Default)
			}
			continue
		}
		if par.Default == nil || par.Default.Text != tt.text || par.Default.Kind != tt.kind {
			t.Errorf("%s: default %+v, want %q (%s)", tt.name, par.Default, tt.text, tt.kind)
			continue
		}
		// Every default is valid for its declared type: an unquoted 1 is an integer.
		if err := par.ValidateValue(*par.Default); err != nil {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
	if got := p.EffectiveParams(nil)["BIG"]; got != "1000000" {
		t.Errorf("BIG reaches templates as %q", got)
	}
}

// The digest covers exactly the files the package reads.
func TestLoadDigest(t *testing.T) {
	files := map[string]string{
		"operator.yaml":    loadOperator,
		"params.yaml":      loadParams,
		"templates/a.yaml": "a",
	}
	digest := func(extra map[string]string) string {
		all := map[string]string{}
		for k, v := range files {
			all[k] = v
		}
		for k, v := range extra {
			all[k] = v
		}
		p, err := Load(mapFS(all), ".")
		if err != nil {
			t.Fatal(err)
		}
		return p.Digest
	}
	base := digest(nil)
	if !strings.HasPrefix(base, "sha256:") || base != digest(nil) {
		t.Fatalf("digest %s is not stable", base)
	}
	if digest(map[string]string{"templates/a.yml": "x", "README.md": "x"}) != base {
		t.Error("files the package does not read change the digest")
	}
	if digest(map[string]string{"templates/a.yaml": "changed"}) == base {
		t.Error("a changed template does not change the digest")
	}
	if digest(map[string]string{"templates/new.yaml": "x"}) == base {
		t.Error("a new template does not change the digest")
	}
}

// Problems that stop a package from being read are Findings naming the file and line.
func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"no operator.yaml", map[string]string{"params.yaml": ""}, "operator.yaml: operator package is missing operator.yaml"},
		{"no params.yaml", map[string]string{"operator.yaml": "name: x"}, "params.yaml: operator package is missing params.yaml"},
		{"operator.yaml not a map", map[string]string{"operator.yaml": "- a", "params.yaml": ""}, "operator.yaml:1: expected a YAML mapping at the top level"},
		{"tasks of the wrong type", map[string]string{"operator.yaml": "name: x\ntasks: oops\n", "params.yaml": ""}, "operator.yaml:2: cannot unmarshal !!str `oops` into []yaml.Node"},
		{"plans a list", map[string]string{"operator.yaml": "name: x\nplans:\n  - deploy\n", "params.yaml": ""}, "operator.yaml:3: plans must be a mapping of plan names to plans"},
		{"a phase of the wrong type", map[string]string{"operator.yaml": "plans:\n  deploy:\n    phases:\n      - steps: 3\n", "params.yaml": ""}, "operator.yaml:4: cannot unmarshal !!int `3` into []yaml.Node"},
		{"params apiVersion", map[string]string{"operator.yaml": "name: x", "params.yaml": "apiVersion: v1\n"}, `params.yaml:1: expecting supported API version kudo.dev/v1beta1 but got "v1"`},
		{"parameters not a list", map[string]string{"operator.yaml": "name: x", "params.yaml": "parameters: {a: 1}\n"}, "params.yaml:1: cannot unmarshal !!map into []yaml.Node"},
		{"enum of maps", map[string]string{"operator.yaml": "name: x", "params.yaml": "parameters:\n  - name: A\n    enum: [~]\n"}, `params.yaml:3: parameter "A": invalid enum value`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Load(mapFS(tt.files), ".")
			if err == nil {
				t.Fatalf("loaded %+v", p)
			}
			var fs Findings
			if !errors.As(err, &fs) {
				t.Fatalf("error %T %v is not Findings", err, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

// A package without templates/ loads; Verify judges it.
func TestLoadWithoutTemplates(t *testing.T) {
	p, err := Load(mapFS(map[string]string{"operator.yaml": "name: x", "params.yaml": ""}), ".")
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Templates) != 0 {
		t.Errorf("templates %v", p.TemplateKeys())
	}
}
