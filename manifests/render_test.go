package manifests

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const renderParams = `parameters:
  - name: COUNT
    type: integer
    default: 3
  - name: ENABLED
    type: boolean
    default: true
  - name: RATIO
    type: number
    default: 0.5
  - name: NAME
    default: web
  - name: PORTS
    type: array
    default: [80, 443]
  - name: LABELS
    type: map
    default: {tier: front, team: web}
  - name: NO_DEFAULT
    required: false
`

// renderPackage loads a package with the given templates (no verify: render must stand on its own).
func renderPackage(t testing.TB, templates map[string]string) *Package {
	t.Helper()
	files := map[string]string{"operator.yaml": "name: op\noperatorVersion: 1.0.0\nappVersion: 2.0.0\n", "params.yaml": renderParams}
	for k, v := range templates {
		files["templates/"+k] = v
	}
	p, err := Load(mapFS(files), ".")
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// The variables of a render, and .Params as KUDO passes them: strings except array and map.
func TestRenderVariables(t *testing.T) {
	p := renderPackage(t, map[string]string{"t.yaml": `{{ printf "%T" .Params.COUNT }} {{ printf "%T" .Params.ENABLED }} {{ printf "%T" .Params.RATIO }}
{{ printf "%T" .Params.PORTS }} {{ printf "%T" .Params.LABELS }} [{{ .Params.NO_DEFAULT }}]
{{ if eq .Params.ENABLED "true" }}enabled{{ end }} {{ add (int .Params.COUNT) 1 }} {{ index .Params.PORTS 1 }} {{ .Params.LABELS.tier }}
{{ .Name }} {{ .Namespace }} {{ .OperatorName }} {{ .OperatorVersion }} {{ .AppVersion }} {{ .PlanName }}/{{ .PhaseName }}/{{ .StepName }} {{ .Pipes.file }}
`})
	got, err := p.RenderText("t.yaml", RenderInput{
		Name: "inst", Namespace: "ns", PlanName: "deploy", PhaseName: "main", StepName: "app",
		Params: map[string]string{"COUNT": "5"}, Pipes: map[string]string{"file": "inst.deploy.main.gen.gen.file"},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := `string string string
[]interface {} map[string]interface {} []
enabled 6 443 front
inst ns op 1.0.0 2.0.0 deploy/main/app inst.deploy.main.gen.gen.file
`
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
}

func TestRenderToYaml(t *testing.T) {
	p := renderPackage(t, map[string]string{"t.yaml": "labels:\n{{ toYaml .Params.LABELS | indent 2 }}\nports: {{ toYaml .Params.PORTS | nindent 2 }}\n"})
	got, err := p.RenderText("t.yaml", RenderInput{})
	if err != nil {
		t.Fatal(err)
	}
	want := "labels:\n  team: web\n  tier: front\nports: \n  - 80\n  - 443\n"
	if got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// Several documents per template; empty and comment-only documents are skipped.
func TestRenderMultiDocument(t *testing.T) {
	p := renderPackage(t, map[string]string{"t.yaml": `# leading comment
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: a
---

---
# only a comment
   # and an indented one
---
{{ if eq .Params.ENABLED "false" }}
apiVersion: v1
kind: ConfigMap
metadata:
  name: disabled
{{ end }}
--- # a separator with a comment
apiVersion: v1
kind: Secret
metadata:
  name: b
  labels:
    count: "{{ .Params.COUNT }}"
`})
	objs, err := p.Render("t.yaml", RenderInput{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.GetKind()+"/"+o.GetName())
	}
	if want := []string{"ConfigMap/a", "Secret/b"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if objs[1].GetLabels()["count"] != "3" {
		t.Errorf("labels %v", objs[1].GetLabels())
	}
}

// A render error names the template, the line and the failing expression.
func TestRenderErrors(t *testing.T) {
	tests := []struct {
		name     string
		template string
		want     []string
	}{
		{"missing key", "a: 1\nb: {{ .Params.NOPE }}\n", []string{"render templates/t.yaml: t.yaml:2:", "<.Params.NOPE>", `map has no entry for key "NOPE"`}},
		{"missing implicit", "a: {{ .Instance }}\n", []string{"render templates/t.yaml:", "t.yaml:1:", "<.Instance>"}},
		{"field of a string", "\n\nc: {{ .Params.NAME.first }}\n", []string{"t.yaml:3:", "<.Params.NAME.first>", "can't evaluate field first"}},
		{"failing function", "d: {{ fail \"no way\" }}\n", []string{"t.yaml:1:", "no way"}},
		{"parse error", "a: {{ .Name\n", []string{"render templates/t.yaml: t.yaml:2: unclosed action started at t.yaml:1"}},
		{"unknown function", "a: {{ include \"x\" . }}\n", []string{"render templates/t.yaml:", `function "include" not defined`}},
		{"env", `a: {{ env "HOME" }}`, []string{"t.yaml:1:", `function "env" is not allowed in kudod templates: it would read the daemon's environment`}},
		{"expandenv", `a: {{ expandenv "$HOME" }}`, []string{`function "expandenv" is not allowed in kudod templates: it would read the daemon's environment`}},
		{"getHostByName", `a: {{ getHostByName "example.com" }}`, []string{`function "getHostByName" is not allowed in kudod templates: it would resolve host names from the daemon`}},
		{"path function", `a: {{ base "/etc/passwd" }}`, []string{`function "base" is not allowed in kudod templates: path functions are not available in templates`}},
		{"invalid YAML", "apiVersion: v1\nkind: A\n---\nb: [\n", []string{"render templates/t.yaml: document 2: line 4:"}},
		{"YAML error line in the whole output", "apiVersion: v1\nkind: A\nmetadata: {name: a}\n---\napiVersion: v1\nkind: B\n  bad: indent\n", []string{"document 2: line 7:"}},
		{"not a mapping", "- a\n- b\n", []string{"document 1: line 1: not a Kubernetes object (a YAML mapping is expected)"}},
		{"no apiVersion", "kind: ConfigMap\nmetadata: {name: a}\n", []string{"document 1: line 1: object without apiVersion"}},
		{"no kind", "---\n---\napiVersion: v1\nmetadata: {name: a}\n", []string{"document 3: line 3: object without kind"}},
		{"neither", "metadata: {name: a}\n", []string{"object without apiVersion, kind"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := renderPackage(t, map[string]string{"t.yaml": tt.template})
			objs, err := p.Render("t.yaml", RenderInput{})
			if err == nil {
				t.Fatalf("rendered %d objects", len(objs))
			}
			var re *RenderError
			if !errors.As(err, &re) || re.Template != "templates/t.yaml" {
				t.Errorf("error %T %v is not a RenderError naming templates/t.yaml", err, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}

func TestRenderUnknownTemplate(t *testing.T) {
	p := renderPackage(t, nil)
	if _, err := p.Render("nope.yaml", RenderInput{}); err == nil || !strings.Contains(err.Error(), "render templates/nope.yaml: no such template") {
		t.Errorf("error %v", err)
	}
}

// RenderAll renders several templates in order with the same variables.
func TestRenderAll(t *testing.T) {
	cm := func(name string) string {
		return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: " + name + "-{{ .Name }}\n"
	}
	p := renderPackage(t, map[string]string{"b.yaml": cm("b"), "a.yaml": cm("a"), "sub/c.yaml": cm("c")})
	objs, err := p.RenderAll([]string{"sub/c.yaml", "a.yaml", "b.yaml"}, RenderInput{Name: "x"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.GetName())
	}
	if want := []string{"c-x", "a-x", "b-x"}; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if _, err := p.RenderAll([]string{"a.yaml", "missing.yaml"}, RenderInput{}); err == nil {
		t.Error("a missing template renders")
	}
}

// Rendering is safe for concurrent use: the planner and the applier render the same package.
func TestRenderConcurrent(t *testing.T) {
	p := renderPackage(t, map[string]string{"t.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Name }}\n"})
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() {
			_, err := p.Render("t.yaml", RenderInput{Name: "x"})
			errs <- err
		}()
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// splitDocuments remembers the line each document starts at in the whole output.
func TestSplitDocuments(t *testing.T) {
	tests := []struct {
		text string
		want []document
	}{
		{"a: 1\n", []document{{"a: 1\n", 1}}},
		{"a: 1\n---\nb: 2\n", []document{{"a: 1\n", 1}, {"b: 2\n", 3}}},
		{"---\na: 1\n", []document{{"", 1}, {"a: 1\n", 2}}},
		{"a\n--- # comment\nb\n---\tx\nc", []document{{"a\n", 1}, {"b\n", 3}, {"c", 5}}},
		{"a\n----\nb\n", []document{{"a\n----\nb\n", 1}}},
		{"a\r\n---\r\nb\r\n", []document{{"a\r\n", 1}, {"b\r\n", 3}}},
		{"x: '---'\n  ---\n", []document{{"x: '---'\n  ---\n", 1}}},
		{"", []document{{"", 1}}},
	}
	for _, tt := range tests {
		if got := splitDocuments(tt.text); !reflect.DeepEqual(got, tt.want) {
			t.Errorf("splitDocuments(%q) = %+v, want %+v", tt.text, got, tt.want)
		}
	}
}

// Render's variables come from RenderInput alone: a value for an undeclared name is not a
// parameter, and a declared one without value or default is "".
func TestRenderParamsOnlyDeclared(t *testing.T) {
	p := renderPackage(t, map[string]string{"t.yaml": "{{ .Params.NO_DEFAULT }}|{{ .Params.UNDECLARED }}"})
	_, err := p.RenderText("t.yaml", RenderInput{Params: map[string]string{"UNDECLARED": "x"}})
	if err == nil || !strings.Contains(err.Error(), `map has no entry for key "UNDECLARED"`) {
		t.Errorf("error %v", err)
	}
}

func TestRenderBoundsWhatATemplateBuilds(t *testing.T) {
	cases := map[string]string{
		"until":     `{{ range until (int .Params.N) }}x{{ end }}`,
		"untilStep": `{{ range untilStep 0 (int .Params.N) 1 }}x{{ end }}`,
		"repeat":    `{{ repeat (int .Params.N) "abcdefgh" }}`,
		"output":    `{{ range until 90000 }}{{ repeat 100 "x" }}{{ end }}`,
	}
	for name, tpl := range cases {
		t.Run(name, func(t *testing.T) {
			p := &Package{Name: "p", Parameters: []*Parameter{{Name: "N"}}, Templates: map[string]*Template{"t.yaml": {Key: "t.yaml", Content: tpl}}}
			_, err := p.RenderText("t.yaml", RenderInput{Params: map[string]string{"N": "10000000000"}})
			if err == nil {
				t.Fatal("an unbounded template rendered")
			}
		})
	}
	p := &Package{Name: "p", Parameters: []*Parameter{{Name: "N"}}, Templates: map[string]*Template{"t.yaml": {Key: "t.yaml", Content: `{{ range until (int .Params.N) }}{{ . }}{{ end }}|{{ untilStep 5 0 -2 }}`}}}
	out, err := p.RenderText("t.yaml", RenderInput{Params: map[string]string{"N": "3"}})
	if err != nil || out != "012|[5 3 1]" {
		t.Fatalf("got %q, %v", out, err)
	}
}
