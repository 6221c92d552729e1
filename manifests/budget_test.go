package manifests

import (
	"context"
	"errors"
	"os"
	"regexp"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/kudod-dev/kudod/test/testenv"
)

// Every template function that builds what it is asked for is bounded before it builds it,
// loops and template calls are counted, and the error names the line and the limit.
func TestRenderLimits(t *testing.T) {
	for _, tc := range []struct {
		name, tpl, want string
	}{
		{"randAlphaNum", "a: x\n{{ randAlphaNum 1000000000 }}", `t.yaml:2: randAlphaNum 1000000000 would build 953.7 MiB, beyond the 64 MiB a package render may build (memory limit)`},
		{"randAscii", "{{ randAscii 100000000 }}", `randAscii 100000000 would build`},
		{"randBytes", "{{ randBytes 100000000 }}", `randBytes 100000000 would build`},
		{"seq", "{{ seq 1 50000000 }}", `seq would build`},
		{"indent", `{{ indent 1000000000 "x" }}`, `indent 1000000000 would build`},
		{"nindent", `{{ nindent 1000000000 "x" }}`, `nindent 1000000000 would build`},
		{"repeat", `{{ repeat 1000000000 "ab" }}`, `repeat 1000000000 would build`},
		{"nested until", `{{ range until 20000 }}{{ range until 20000 }}{{ end }}{{ end }}`, `steps (function calls, loop iterations, template calls) (steps limit)`},
		{"range over int", `{{ range 1000000000 }}{{ end }}`, `(steps limit)`},
		{"two-way recursion", `{{ define "a" }}{{ template "b" . }}{{ template "b" . }}{{ end }}{{ define "b" }}{{ template "a" . }}{{ template "a" . }}{{ end }}{{ template "a" . }}`, `template calls nest deeper than 100 (depth limit)`},
		{"self recursion", `{{ define "a" }}{{ template "a" . }}{{ end }}{{ template "a" . }}`, `(depth limit)`},
		{"doubling printf", `{{ $x := "0123456789" }}{{ range until 40 }}{{ $x = printf "%s%s" $x $x }}{{ end }}`, `printf would build`},
		{"doubling cat", `{{ $x := "0123456789" }}{{ range until 40 }}{{ $x = cat $x $x }}{{ end }}`, `cat would build`},
		{"doubling print", `{{ $x := "0123456789" }}{{ range until 40 }}{{ $x = print $x $x }}{{ end }}`, `print would build`},
		{"join", `{{ $x := "0123456789" }}{{ range until 40 }}{{ $x = join $x (list $x $x) }}{{ end }}`, `t.yaml:1: join: a value larger than`},
		{"append growth", `{{ $l := list }}{{ range until 100000 }}{{ $l = append $l . }}{{ end }}`, `append would build`},
		{"concat growth", `{{ $l := list 1 2 3 4 5 6 7 8 }}{{ range until 40 }}{{ $l = concat $l $l }}{{ end }}`, `concat would build`},
		{"printf width", `{{ range until 1000 }}{{ $_ := printf "%999999d%999999d" 1 2 }}{{ end }}`, `printf would build`},
		{"b64enc", `{{ $x := "0123456789abcdef" }}{{ range until 30 }}{{ $x = b64enc (cat $x $x) }}{{ end }}`, `would build`},
		{"toJson", `{{ $l := list "0123456789012345678901234567890123456789" }}{{ range until 30 }}{{ $l = list $l $l }}{{ end }}{{ toJson $l }}`, `toJson: a value larger than`},
		{"toYaml", `{{ $l := list (repeat 2000000 "x") }}{{ range until 1000 }}{{ $_ := toYaml $l }}{{ end }}`, `toYaml: more work than`},
		{"replace empty", `{{ replace "" (repeat 10000 "x") (repeat 10000 "y") }}`, `replace would build`},
		{"regexReplaceAll", `{{ regexReplaceAll "" (repeat 10000 "y") (repeat 10000 "x") }}`, `regexReplaceAll would build`},
		{"splitList empty", `{{ $x := repeat 5000000 "x" }}{{ range until 10 }}{{ $_ := splitList "" $x }}{{ end }}`, `would build`},
		{"uniq", `{{ uniq (until 100000) }}`, `uniq: more work than`},
		{"self-containing map", `{{ $d := dict }}{{ $_ := set $d "a" $d }}{{ $d }}`, `set: the value holds the map it is put into`},
		{"map in its own list", `{{ $d := dict }}{{ $_ := set $d "a" (list 1 $d) }}`, `set: the value holds the map it is put into`},
		{"merge cycle", `{{ $d := dict "b" 1 }}{{ $_ := merge $d (dict "a" $d) }}`, `merge: the value holds the map it is put into`},
		{"deep nesting printed", `{{ $root := dict }}{{ $cur := $root }}{{ range until 1000 }}{{ $n := dict }}{{ $_ := set $cur "a" $n }}{{ $cur = $n }}{{ end }}{{ $root }}`, `nested deeper than 100 levels`},
		{"deep nesting toString", `{{ $root := dict }}{{ $cur := $root }}{{ range until 1000 }}{{ $n := dict }}{{ $_ := set $cur "a" $n }}{{ $cur = $n }}{{ end }}{{ toString $root }}`, `nested deeper than 100 levels`},
		{"output", `{{ range until 100 }}{{ repeat 100000 "x" }}{{ end }}`, `the rendered output exceeds 8 MiB (output limit)`},
		{"fromJson deep", `{{ fromJson (printf "%s%s" (repeat 500 "[") (repeat 500 "]")) }}`, `nested deeper than 100 levels`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := renderPackage(t, map[string]string{"t.yaml": tc.tpl})
			start := time.Now()
			_, err := p.RenderText("t.yaml", RenderInput{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
			if !IsRenderLimit(err) {
				t.Errorf("%v is not a render limit", err)
			}
			if d := time.Since(start); d > 6*time.Second {
				t.Errorf("took %s", d)
			}
		})
	}
}

// Templates within the limits render as before: the instrumentation prints nothing.
func TestRenderWithinLimits(t *testing.T) {
	p := renderPackage(t, map[string]string{"t.yaml": `{{ define "x" }}[{{ . }}]{{ end }}{{ range $i, $e := until 3 }}{{ template "x" $e }}{{ end }}
{{ .Params.PORTS }} {{ .Params.LABELS }} {{ dict "a" 1 }} {{ list 1 "b" }} {{ default "d" .Params.NO_DEFAULT }}
{{ printf "%05d|%-4s|" 42 "ab" }}{{ indent 2 "a\nb" }}{{ randAlphaNum 3 | len }} {{ seq 3 }}
{{ with .Params.LABELS }}{{ .tier }}{{ end }}{{ range 2 }}{{ . }}{{ end }}`})
	got, err := p.RenderText("t.yaml", RenderInput{})
	if err != nil {
		t.Fatal(err)
	}
	want := "[0][1][2]\n[80 443] map[team:web tier:front] map[a:1] [1 b] d\n00042|ab  |  a\n  b3 1 2 3\nfront01"
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
}

// A render stops when its context ends (the process shuts down) and when its time is up.
func TestRenderCancellation(t *testing.T) {
	slow := `{{ range until 100000 }}{{ range until 100000 }}{{ $_ := sha256sum "x" }}{{ end }}{{ end }}`
	p := renderPackage(t, map[string]string{"t.yaml": slow})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	ctx = WithRenderLimits(ctx, RenderLimits{MaxSteps: 1 << 40})
	start := time.Now()
	_, err := p.RenderTextContext(ctx, "t.yaml", RenderInput{})
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "cancelled" {
		t.Fatalf("error %v, want a cancellation", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("stopped after %s", d)
	}

	ctx = WithRenderLimits(context.Background(), RenderLimits{Timeout: 200 * time.Millisecond, MaxSteps: 1 << 40})
	_, err = p.RenderTextContext(ctx, "t.yaml", RenderInput{})
	if err == nil || !strings.Contains(err.Error(), "the package render took longer than 200ms (time limit)") {
		t.Fatalf("error %v, want the time limit", err)
	}
}

// One package render shares one budget across its templates: Verify of a package whose
// templates each stay under the limits but together do not is refused.
func TestRenderBudgetIsPerPackage(t *testing.T) {
	tpls := map[string]string{}
	for _, k := range []string{"a.yaml", "b.yaml", "c.yaml"} {
		tpls[k] = `{{ $_ := repeat 30000000 "x" }}`
	}
	p := renderPackage(t, tpls)
	for _, k := range []string{"a.yaml", "b.yaml", "c.yaml"} {
		if _, err := p.RenderText(k, RenderInput{}); err != nil {
			t.Fatalf("%s alone: %v", k, err)
		}
	}
	_, err := p.RenderAll([]string{"a.yaml", "b.yaml", "c.yaml"}, RenderInput{})
	if err == nil || !strings.Contains(err.Error(), "(memory limit)") {
		t.Fatalf("error %v, want the memory limit", err)
	}
}

// The instrumentation changes nothing a template renders: every template of the fixture
// packages (and of the public catalog with KUDOD_OPERATORS_DIR) renders exactly as plain
// text/template with sprig renders it.
func TestRenderInstrumentationKeepsOutput(t *testing.T) {
	roots := []string{testenv.FixtureOperatorsDir(t)}
	if dir := os.Getenv("KUDOD_OPERATORS_DIR"); dir != "" {
		roots = append(roots, dir)
	}
	compared := 0
	for _, root := range roots {
		for _, dir := range testenv.PackageDirs(t, root) {
			p := loadDir(t, dir)
			in := RenderInput{Name: "inst", Namespace: "ns", PlanName: "deploy", PhaseName: "p", StepName: "s", Pipes: map[string]string{}}
			for _, plan := range p.PlanNames() {
				for k, v := range p.Pipes(in.Name, plan) {
					in.Pipes[k] = v
				}
			}
			vars, err := p.Variables(in)
			if err != nil {
				t.Fatal(err)
			}
			for _, key := range p.TemplateKeys() {
				content := p.Templates[key].Content
				if nonDeterministic.MatchString(content) {
					continue
				}
				plain, err := template.New(key).Option("missingkey=error").Funcs(funcMap()).Parse(content)
				if err != nil {
					continue
				}
				var want strings.Builder
				wantErr := plain.Execute(&want, vars)
				got, err := p.renderText(context.Background(), key, vars)
				if (err == nil) != (wantErr == nil) {
					t.Errorf("%s %s: error %v, plain text/template: %v", dir, key, err, wantErr)
					continue
				}
				compared++
				if err == nil && got != want.String() {
					t.Errorf("%s %s: renders\n%s\nplain text/template renders\n%s", dir, key, got, want.String())
				}
			}
		}
	}
	t.Logf("%d templates compared", compared)
}

var nonDeterministic = regexp.MustCompile(`\b(rand[A-Z]\w*|uuidv4|now|genCA|genPrivateKey|genSelfSigned\w*|genSigned\w*|bcrypt|htpasswd|shuffle)\b`)

// Control structures and parentheses nesting deeper than text/template can parse without
// hundreds of megabytes of stack are refused before parsing, with the line.
func TestTemplateNesting(t *testing.T) {
	for _, tc := range []struct {
		name, tpl, want string
	}{
		{"ifs", "a: 1\n" + strings.Repeat("{{ if 1 }}", 101) + strings.Repeat("{{ end }}", 101), "t.yaml:2: actions nest deeper than 100 levels"},
		{"ranges with trim markers", strings.Repeat("{{- range $i := until 1 -}}\n", 101) + strings.Repeat("{{- end }}", 101), "t.yaml:101: actions nest deeper than 100 levels"},
		{"parentheses", "{{ " + strings.Repeat("(", 101) + "1" + strings.Repeat(")", 101) + " }}", "t.yaml:1: actions nest deeper than 100 levels"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := renderPackage(t, map[string]string{"t.yaml": tc.tpl})
			_, err := p.RenderText("t.yaml", RenderInput{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	// Just within the bound, and strings and comments holding delimiters, parse as before.
	ok := strings.Repeat("{{ if 1 }}", 100) + `{{ "{{ if 1 }}" }}{{/* {{ if }} */}}x` + strings.Repeat("{{ end }}", 100)
	p := renderPackage(t, map[string]string{"t.yaml": ok})
	if got, err := p.RenderText("t.yaml", RenderInput{}); err != nil || got != "{{ if 1 }}x" {
		t.Fatalf("got %q, %v", got, err)
	}
}
