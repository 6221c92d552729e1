package manifests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/kudod-dev/kudod/test/testenv"
)

func loadDir(t testing.TB, dir string) *Package {
	t.Helper()
	p, err := Load(os.DirFS(dir), ".")
	if err != nil {
		t.Fatalf("Load(%s): %v", dir, err)
	}
	return p
}

// Every test package verifies without errors or warnings and renders as verifyAndRender
// expects.
func TestFixturesVerifyAndRender(t *testing.T) {
	verifyAndRender(t, testenv.FixtureOperatorsDir(t), true)
}

// Every public KUDO package version verifies without errors (warnings are logged) and renders
// as verifyAndRender expects.
func TestCatalogVerifyAndRender(t *testing.T) {
	root := testenv.CatalogDir(t)
	// The packages kudod was tested against must be there: an empty directory must not pass.
	for _, want := range []string{"first-operator/0.2.0", "zookeeper/3.6.2-0.3.3", "kafka/2.5.1-1.3.2", "flink-demo/0.1.6", "cowsay/0.2.0"} {
		if _, err := os.Stat(filepath.Join(root, want, OperatorFileName)); err != nil {
			t.Fatalf("package %s is missing: %v", want, err)
		}
	}
	verifyAndRender(t, root, false)
}

// verifyAndRender verifies every package under root and renders every template with default
// parameters (and the pipe keys of all plans) into what its users expect: Kubernetes objects
// with apiVersion, kind and metadata.name; a pipe pod (named by kudod) for a Pipe task; a YAML
// map for a KudoOperator parameterFile (flink-demo's are not Kubernetes objects).
func verifyAndRender(t *testing.T, root string, noWarnings bool) {
	for _, dir := range testenv.PackageDirs(t, root) {
		name, _ := filepath.Rel(root, dir)
		t.Run(name, func(t *testing.T) {
			p := loadDir(t, dir)
			fs := Verify(p)
			for _, w := range fs.Warnings() {
				// protected-crd exists to be warned about (manifests/protected_crd_test.go).
				if noWarnings && !strings.HasPrefix(name, "protected-crd/") {
					t.Error("warning:", w)
				} else {
					t.Log("warning:", w)
				}
			}
			for _, e := range fs.Errors() {
				t.Error(e)
			}

			paramFiles, pipePods := map[string]bool{}, map[string]bool{}
			for _, task := range p.Tasks {
				switch task.Kind {
				case TaskKudoOperator:
					paramFiles[task.Spec.ParameterFile] = true
				case TaskPipe:
					pipePods[task.Spec.Pod] = true
				}
			}
			pipes := map[string]string{}
			for _, plan := range p.PlanNames() {
				for k, v := range p.Pipes("inst", plan) {
					pipes[k] = v
				}
			}
			in := RenderInput{Name: "inst", Namespace: "ns", Pipes: pipes}
			objects := 0
			for _, key := range p.TemplateKeys() {
				if paramFiles[key] {
					text, err := p.RenderText(key, in)
					if err != nil {
						t.Errorf("%s: %v", key, err)
						continue
					}
					var m map[string]any
					if err := yaml.Unmarshal([]byte(text), &m); err != nil || len(m) == 0 {
						t.Errorf("parameterFile %s does not render to a non-empty map: %v\n%s", key, err, text)
					}
					continue
				}
				objs, err := p.Render(key, in)
				if err != nil {
					t.Errorf("%s: %v", key, err)
					continue
				}
				for _, o := range objs {
					objects++
					if o.GetAPIVersion() == "" || o.GetKind() == "" {
						t.Errorf("%s: object without apiVersion or kind: %v", key, o.Object)
					}
					if o.GetName() == "" && !pipePods[key] {
						t.Errorf("%s: %s without metadata.name", key, o.GetKind())
					}
				}
			}
			if objects == 0 {
				t.Errorf("no objects rendered from %s", dir)
			}
		})
	}
}
