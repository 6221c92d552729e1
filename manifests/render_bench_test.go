package manifests

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/kudod-dev/kudod/test/testenv"
)

// benchPackages are the fixture packages with the most templating (ranges, until, toYaml,
// indent), and kafka from the public catalog when KUDOD_OPERATORS_DIR names it.
func benchPackages(b *testing.B) map[string]*Package {
	root := testenv.FixtureOperatorsDir(b)
	out := map[string]*Package{}
	for _, name := range []string{"quorum/1.37.0-0.2.0", "broker/1.1.0", "legacy/1.0.0"} {
		out[name] = loadDir(b, filepath.Join(root, name))
	}
	if dir := os.Getenv("KUDOD_OPERATORS_DIR"); dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "kafka/2.5.1-1.3.2", OperatorFileName)); err == nil {
			out["kafka/2.5.1-1.3.2"] = loadDir(b, filepath.Join(dir, "kafka/2.5.1-1.3.2"))
		}
	}
	return out
}

// BenchmarkRender renders every resource template of a package with default parameters, as
// a plan render does for one instance (the daemon renders a thousand instances in make bench).
func BenchmarkRender(b *testing.B) {
	for name, p := range benchPackages(b) {
		var keys []string
		for _, t := range p.Tasks {
			for _, tt := range t.Templates() {
				if tt.Role == RoleResource {
					keys = append(keys, tt.Key)
				}
			}
		}
		in := RenderInput{Name: "inst", Namespace: "ns", PlanName: "deploy", PhaseName: "p", StepName: "s", Pipes: map[string]string{}}
		for _, plan := range p.PlanNames() {
			for k, v := range p.Pipes(in.Name, plan) {
				in.Pipes[k] = v
			}
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.RenderAll(keys, in); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkRenderText executes every resource template of a package without parsing the
// output: the template execution alone, where the render budget's checks run.
func BenchmarkRenderText(b *testing.B) {
	for name, p := range benchPackages(b) {
		var keys []string
		for _, t := range p.Tasks {
			for _, tt := range t.Templates() {
				if tt.Role == RoleResource {
					keys = append(keys, tt.Key)
				}
			}
		}
		in := RenderInput{Name: "inst", Namespace: "ns", PlanName: "deploy", PhaseName: "p", StepName: "s", Pipes: map[string]string{}}
		for _, plan := range p.PlanNames() {
			for k, v := range p.Pipes(in.Name, plan) {
				in.Pipes[k] = v
			}
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				for _, k := range keys {
					if _, err := p.RenderText(k, in); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkVerify verifies a package (every template rendered with default parameters), as
// the daemon does once per new package digest.
func BenchmarkVerify(b *testing.B) {
	for name, p := range benchPackages(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if fs := Verify(p); fs.HasErrors() {
					b.Fatal(fs.Errors())
				}
			}
		})
	}
}
