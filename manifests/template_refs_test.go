package manifests

import (
	"reflect"
	"testing"
	"text/template"

	"github.com/kudod-dev/kudod/test/testenv"
)

// The walker finds what a template refers to, following the dot into range and with.
func TestFindTemplateRefs(t *testing.T) {
	tests := []struct {
		name      string
		text      string
		params    map[string]int
		implicits map[string]int
		pipes     map[string]int
	}{
		{"field", "{{ .Params.A }}", map[string]int{"A": 1}, nil, nil},
		{"root variable", "\n{{ $.Params.B }}", map[string]int{"B": 2}, nil, nil},
		{"nested pipelines", `{{ default "x" (.Params.C | lower) | quote }}`, map[string]int{"C": 1}, nil, nil},
		{"if and else keep the dot", "{{ if .Params.D }}{{ .Name }}\n{{ else }}{{ .Other }}{{ end }}", map[string]int{"D": 1}, map[string]int{"Other": 2}, nil},
		{"range moves the dot", "{{ range .Params.L }}{{ .x }}{{ $.Params.E }}{{ else }}{{ .Bad }}{{ end }}", map[string]int{"L": 1, "E": 1}, map[string]int{"Bad": 1}, nil},
		{"with moves the dot", "{{ with .Params.M }}{{ .team }}{{ else }}{{ .Wrong }}{{ end }}", map[string]int{"M": 1}, map[string]int{"Wrong": 1}, nil},
		{"a variable holding the root", "{{ $root := . }}{{ range $i := until 3 }}{{ $root.Params.F }}{{ end }}", map[string]int{"F": 1}, nil, nil},
		{"index with a literal", `{{ index .Params "G" }} {{ index $.Params "H" }} {{ index .Params .Name }}`, map[string]int{"G": 1, "H": 1}, nil, nil},
		{"defined templates", `{{ define "x" }}{{ .Params.I }}{{ end }}{{ template "x" . }}`, map[string]int{"I": 1}, nil, nil},
		{"pipes", "{{ .Pipes.key }}", nil, nil, map[string]int{"key": 1}},
		{"unknown implicit with a chain", "a\nb\n{{ .Foo.bar }}", nil, map[string]int{"Foo": 3}, nil},
		{"the implicit variables", "{{ .Name }}{{ .Namespace }}{{ .OperatorName }}{{ .OperatorVersion }}{{ .AppVersion }}{{ .PlanName }}{{ .PhaseName }}{{ .StepName }}{{ .Params }}{{ .Pipes }}", nil, nil, nil},
		{"first use wins", "{{ .Params.A }}\n{{ .Params.A }}", map[string]int{"A": 1}, nil, nil},
		{"variable declarations", "{{ $n := .Params.N }}{{ $n }}", map[string]int{"N": 1}, nil, nil},
		{"chained call results", "{{ (.Params.P).x }}", map[string]int{"P": 1}, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tpl, err := template.New("t").Funcs(funcMap()).Parse(tt.text)
			if err != nil {
				t.Fatal(err)
			}
			refs := findTemplateRefs(tpl, tt.text)
			for _, c := range []struct {
				what      string
				got, want map[string]int
			}{{"params", refs.params, tt.params}, {"implicits", refs.implicits, tt.implicits}, {"pipes", refs.pipes, tt.pipes}} {
				if c.want == nil {
					c.want = map[string]int{}
				}
				if !reflect.DeepEqual(c.got, c.want) {
					t.Errorf("%s: got %v, want %v", c.what, c.got, c.want)
				}
			}
		})
	}
}

func TestFindTemplateRefsFunctions(t *testing.T) {
	text := "{{ env \"A\" }}\n{{ upper (randAlphaNum 5) }}"
	tpl, err := template.New("t").Funcs(funcMap()).Parse(text)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{"env": 1, "upper": 2, "randAlphaNum": 2}
	if got := findTemplateRefs(tpl, text).funcs; !reflect.DeepEqual(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestPipeNames(t *testing.T) {
	ref := PipeRef{Key: "indexHtml", Plan: "deploy", Phase: "gen-files", Step: "Step_1", Task: "gen.www"}
	if got := PipeArtifactName("My-Inst", ref); got != "myinst.deploy.genfiles.step1.genwww.indexhtml" {
		t.Errorf("artifact %s", got)
	}
	if got := PipePodName("zk", ref); got != "zk.deploy.genfiles.step1.genwww.pipepod" {
		t.Errorf("pod %s", got)
	}

	// A plan's pipe keys name the Secrets of its Pipe task; a plan without one has none.
	p := loadDir(t, testenv.FixtureOperator(t, "broker", "1.0.0"))
	wantPipes(t, p, "kafka", map[string]string{
		"privatekey":  "kafka.deploy.main.tls.tls.privatekey",
		"certificate": "kafka.deploy.main.tls.tls.certificate",
	})
	if got := p.PipeRefs("no-such-plan"); got != nil {
		t.Errorf("pipes of a missing plan %v", got)
	}
}

// Kafka's deploy pipes a key and a certificate out of a pod; its update-instance plan has no
// Pipe task.
func TestCatalogPipeNames(t *testing.T) {
	p := loadDir(t, testenv.CatalogOperator(t, "kafka", "2.5.1-1.3.2"))
	wantPipes(t, p, "kafka", map[string]string{
		"privatekey":  "kafka.deploy.deploykafka.generatetlscertificates.generatetlscertificates.privatekey",
		"certificate": "kafka.deploy.deploykafka.generatetlscertificates.generatetlscertificates.certificate",
	})
}

// wantPipes checks the pipes of p's deploy plan for instance, and that its update-instance
// plan has none.
func wantPipes(t *testing.T, p *Package, instance string, want map[string]string) {
	t.Helper()
	if got := p.Pipes(instance, "deploy"); !reflect.DeepEqual(got, want) {
		t.Errorf("%s deploy pipes %v, want %v", p.Name, got, want)
	}
	if got := p.Pipes(instance, "update-instance"); len(got) != 0 {
		t.Errorf("update-instance has no Pipe task, got %v", got)
	}
}
