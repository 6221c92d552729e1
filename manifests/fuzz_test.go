package manifests

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/kudod-dev/kudod/test/testenv"
)

// packageSeeds returns operator.yaml, params.yaml and the first template of every package
// of testdata, as fuzz seeds.
func packageSeeds(t testing.TB) [][3][]byte {
	var dirs []string
	for _, pattern := range []string{"testdata/valid/*", "testdata/broken/*", filepath.Join(testenv.FixtureOperatorsDir(t), "*", "*")} {
		m, err := filepath.Glob(pattern)
		if err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, m...)
	}
	var seeds [][3][]byte
	for _, dir := range dirs {
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			continue
		}
		op, _ := os.ReadFile(filepath.Join(dir, OperatorFileName))
		params, _ := os.ReadFile(filepath.Join(dir, ParamsFileName))
		templates, _ := filepath.Glob(filepath.Join(dir, TemplatesDir, "*.yaml"))
		sort.Strings(templates)
		var tpl []byte
		if len(templates) > 0 {
			tpl, _ = os.ReadFile(templates[0])
		}
		seeds = append(seeds, [3][]byte{op, params, tpl})
	}
	if len(seeds) < 30 {
		t.Fatalf("only %d seed packages", len(seeds))
	}
	return seeds
}

// FuzzLoad: loading and verifying any operator.yaml, params.yaml and template never panics,
// and every finding names a file of the package.
func FuzzLoad(f *testing.F) {
	for _, s := range packageSeeds(f) {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, operator, params, tpl []byte) {
		fsys := fstest.MapFS{
			"pkg/operator.yaml":    {Data: operator},
			"pkg/params.yaml":      {Data: params},
			"pkg/templates/t.yaml": {Data: tpl},
			// The name most seeds' tasks use, so the render checks run on the fuzzed text.
			"pkg/templates/configmap.yaml": {Data: tpl},
		}
		p, err := Load(fsys, "pkg")
		var findings Findings
		if err != nil {
			if !errors.As(err, &findings) || len(findings.Errors()) == 0 {
				t.Fatalf("Load failed without error findings: %v", err)
			}
		} else {
			findings = Verify(p)
		}
		for _, fd := range findings {
			if !strings.HasPrefix(fd.File, "pkg/") || fd.Message == "" || fd.Line < 0 {
				t.Errorf("finding %+v does not name a file of the package", fd)
			}
			if fd.Severity != SeverityError && fd.Severity != SeverityWarning {
				t.Errorf("finding %+v has severity %q", fd, fd.Severity)
			}
		}
	})
}

const fuzzParams = `parameters:
  - name: X
    default: a
  - name: N
    type: integer
    default: 3
  - name: L
    type: array
    default: [a, b]
  - name: M
    type: map
    default: {k: v}
`

// FuzzRender: rendering any template with any value never panics; what renders is objects
// with apiVersion and kind, and what fails is a RenderError naming the template.
func FuzzRender(f *testing.F) {
	for _, s := range []struct{ tpl, value string }{
		{"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Name }}\ndata:\n  x: {{ .Params.X | quote }}\n", "hello"},
		{"{{ range $i := until (int .Params.N) }}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c-{{ $i }}\n{{ end }}", "2"},
		{"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: m\n  labels:\n{{ toYaml .Params.M | indent 4 }}\ndata:\n  l: {{ toYaml .Params.L | quote }}\n", "x"},
		{"---\n# comment\n---\n\n---\napiVersion: v1\nkind: Secret\nmetadata: {name: {{ .Params.X }}}\n", "a: b"},
		{"{{ if eq .Params.X \"true\" }}apiVersion: v1\nkind: Namespace\nmetadata: {name: n}{{ end }}", "true"},
		{"kind: {{ .Params.X }}\n", "{{"},
		{"{{ .Params.NOPE }}", ""},
		{"{{ env \"HOME\" }}", ""},
		{"{{ .Params.X", "}}"},
		{"- {{ .Params.X }}\n", "[1, 2]"},
		{"apiVersion: v1\nkind: A\n---\nb: [\n", "\n---\n"},
	} {
		f.Add(s.tpl, s.value)
	}
	for _, dir := range []string{"testdata/valid/everything/templates", filepath.Join(testenv.FixtureOperator(f, "quorum", "1.37.0-0.2.0"), "templates")} {
		files, _ := filepath.Glob(filepath.Join(dir, "*.yaml"))
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(string(data), "3")
		}
	}
	f.Fuzz(func(t *testing.T, tpl, value string) {
		p, err := Load(fstest.MapFS{
			"operator.yaml":    {Data: []byte("name: fuzz\noperatorVersion: 0.1.0\n")},
			"params.yaml":      {Data: []byte(fuzzParams)},
			"templates/t.yaml": {Data: []byte(tpl)},
		}, ".")
		if err != nil {
			t.Fatal(err)
		}
		objs, err := p.Render("t.yaml", RenderInput{Name: "n", Namespace: "ns", Params: map[string]string{"X": value, "N": value}})
		if err != nil {
			var re *RenderError
			if !errors.As(err, &re) || re.Template != "templates/t.yaml" {
				t.Fatalf("error %T %v is not a RenderError naming the template", err, err)
			}
			return
		}
		for _, o := range objs {
			if o.GetAPIVersion() == "" || o.GetKind() == "" {
				t.Fatalf("object without apiVersion or kind: %v", o.Object)
			}
		}
	})
}
