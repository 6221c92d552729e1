package app

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kudod-dev/kudod/test/testenv"
)

const manifestsTestdata = "../../../manifests/testdata"

// runCLI executes the command line and returns its exit code, stdout and stderr.
func runCLI(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := Execute(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// Every test package passes kudod verify with exit 0.
func TestVerifyFixtures(t *testing.T) {
	verifyAll(t, testenv.FixtureOperatorsDir(t))
}

// Every public KUDO package version passes kudod verify with exit 0.
func TestCatalogVerify(t *testing.T) {
	verifyAll(t, testenv.CatalogDir(t))
}

func verifyAll(t *testing.T, root string) {
	for _, dir := range testenv.PackageDirs(t, root) {
		t.Run(strings.TrimPrefix(dir, root+"/"), func(t *testing.T) {
			code, out, errOut := runCLI(t, "verify", dir)
			if code != 0 || !strings.Contains(out, "package is valid") || strings.Contains(out, "error:") {
				t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
		})
	}
}

func TestVerifyCommand(t *testing.T) {
	unreadable := t.TempDir()
	copyTestPackage(t, filepath.Join(manifestsTestdata, "valid/minimal"), unreadable)
	// A template that cannot be read (as root, permissions do not stop reads: a dangling link does).
	if err := os.Symlink(filepath.Join(unreadable, "nowhere"), filepath.Join(unreadable, "templates", "gone.yaml")); err != nil {
		t.Fatal(err)
	}
	notADir := filepath.Join(manifestsTestdata, "valid/minimal/operator.yaml")

	tests := []struct {
		name    string
		args    []string
		code    int
		stdout  []string
		stderr  []string
		notOut  []string
		emptyIO bool
	}{
		{
			name:   "valid",
			args:   []string{"verify", filepath.Join(manifestsTestdata, "valid/everything")},
			stdout: []string{"package is valid\n"},
			notOut: []string{"warning", "error"},
		},
		{
			name: "an error names the file on disk and the line",
			args: []string{"verify", filepath.Join(manifestsTestdata, "broken/bad-semver")},
			code: 1,
			stdout: []string{
				filepath.Join(manifestsTestdata, "broken/bad-semver/operator.yaml") + `:3: error: operatorVersion "one.two" is not semver`,
			},
			stderr: []string{"Error: " + filepath.Join(manifestsTestdata, "broken/bad-semver") + ": 1 error, 0 warnings"},
			notOut: []string{"package is valid"},
		},
		{
			name: "warnings print before errors",
			args: []string{"verify", filepath.Join(manifestsTestdata, "broken/pipe-pod-missing")},
			code: 1,
			stdout: []string{
				"pipe-pod-missing/templates/pipe-pod.yaml: warning: template \"pipe-pod.yaml\" is not used by any task\n" +
					manifestsTestdata + "/broken/pipe-pod-missing/operator.yaml:6: error: task \"gen\" names pod template \"generator.yaml\"",
			},
			stderr: []string{"2 errors, 1 warning"},
		},
		{
			name:   "load errors",
			args:   []string{"verify", filepath.Join(manifestsTestdata, "broken/params-invalid-yaml")},
			code:   1,
			stdout: []string{"broken/params-invalid-yaml/params.yaml:5: error: invalid YAML: mapping values are not allowed in this context"},
		},
		{
			name:   "an unreadable file",
			args:   []string{"verify", unreadable},
			code:   1,
			stdout: []string{filepath.Join(unreadable, "templates/gone.yaml") + ": error: cannot read"},
		},
		{
			name:   "a missing directory",
			args:   []string{"verify", filepath.Join(t.TempDir(), "nope")},
			code:   1,
			stdout: []string{"nope: error: cannot read the package directory: no such file or directory"},
		},
		{
			name:   "a file, not a directory",
			args:   []string{"verify", notADir},
			code:   1,
			stdout: []string{"operator.yaml: error: not a directory"},
		},
		{name: "no directory", args: []string{"verify"}, code: 2, stderr: []string{"requires at least 1 arg(s), only received 0"}},
		{name: "two directories are both checked", args: []string{"verify", "a", "b"}, code: 1, stdout: []string{"a: error: cannot read", "b: error: cannot read"}, stderr: []string{"Error: 2 packages: 2 errors, 0 warnings"}},
		{name: "an unknown flag", args: []string{"verify", "--strict", "a"}, code: 2, stderr: []string{"unknown flag: --strict"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errOut := runCLI(t, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d", code, tt.code)
			}
			for _, w := range tt.stdout {
				if !strings.Contains(out, w) {
					t.Errorf("stdout does not contain %q", w)
				}
			}
			for _, w := range tt.stderr {
				if !strings.Contains(errOut, w) {
					t.Errorf("stderr does not contain %q", w)
				}
			}
			for _, w := range tt.notOut {
				if strings.Contains(out, w) {
					t.Errorf("stdout contains %q", w)
				}
			}
			if t.Failed() {
				t.Logf("stdout:\n%s\nstderr:\n%s", out, errOut)
			}
		})
	}
}

// A package with warnings only is valid: exit 0, the warnings printed.
func TestVerifyWarningsOnly(t *testing.T) {
	dir := t.TempDir()
	copyTestPackage(t, filepath.Join(manifestsTestdata, "valid/minimal"), dir)
	writeTestFile(t, filepath.Join(dir, "templates", "spare.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: spare\n")
	code, out, errOut := runCLI(t, "verify", dir)
	if code != 0 {
		t.Errorf("exit %d, stderr %s", code, errOut)
	}
	want := filepath.Join(dir, "templates/spare.yaml") + ": warning: template \"spare.yaml\" is not used by any task\npackage is valid (1 warning)\n"
	if out != want {
		t.Errorf("stdout\n%s\nwant\n%s", out, want)
	}
}

func copyTestPackage(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.WalkDir(from, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, p)
		writeTestFile(t, filepath.Join(to, rel), string(data))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func writeTestFile(t *testing.T, path, data string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A symbolic link out of the package directory is refused with its name: verify runs in CI on
// pull request checkouts, and must not read what a link points to outside the checkout.
func TestVerifyRefusesLinksOutOfDir(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "pkg")
	copyTestPackage(t, filepath.Join(manifestsTestdata, "valid/minimal"), dir)
	if err := os.WriteFile(filepath.Join(root, "creds.yaml"), []byte("password: hunter2\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../creds.yaml", filepath.Join(dir, "templates", "leak.yaml")); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"verify", "render"} {
		code, out, errOut := runCLI(t, cmd, dir)
		if code != 1 || !strings.Contains(out+errOut, "symbolic link templates/leak.yaml -> ../../creds.yaml leads outside "+dir+": refused") || strings.Contains(out+errOut, "hunter2") {
			t.Errorf("%s: exit %d\nstdout:\n%s\nstderr:\n%s", cmd, code, out, errOut)
		}
	}
}

// Several packages are verified together, and KudoOperator tasks among them must not form a
// cycle.
func TestVerifyKudoOperatorCycle(t *testing.T) {
	root := t.TempDir()
	for _, p := range [][2]string{{"a", "b"}, {"b", "a"}} {
		dir := filepath.Join(root, p[0])
		if err := os.MkdirAll(filepath.Join(dir, "templates"), 0o755); err != nil {
			t.Fatal(err)
		}
		op := "apiVersion: kudo.dev/v1beta1\nname: " + p[0] + "\noperatorVersion: 0.1.0\nkubernetesVersion: 1.20.0\ntasks:\n  - name: child\n    kind: KudoOperator\n    spec:\n      package: " + p[1] + "\nplans:\n  deploy:\n    strategy: serial\n    phases:\n      - name: main\n        strategy: serial\n        steps:\n          - name: child\n            tasks: [child]\n"
		for name, content := range map[string]string{"operator.yaml": op, "params.yaml": "parameters: []\n"} {
			if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	if code, out, errOut := runCLI(t, "verify", a); code != 0 {
		t.Fatalf("a alone: exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut := runCLI(t, "verify", a, b)
	if code != 1 || !strings.Contains(out, filepath.Join(a, "operator.yaml")+`:6: error: KudoOperator task "child" makes a cycle of packages: a 0.1.0 → b 0.1.0 → a 0.1.0`) || !strings.Contains(errOut, "2 packages: 2 errors") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errOut)
	}
}

// A verify whose context ends (SIGTERM, through main's signal.NotifyContext) stops rendering
// and exits 2.
func TestVerifyInterrupted(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errOut bytes.Buffer
	code := Execute(ctx, []string{"verify", filepath.Join(manifestsTestdata, "valid/everything")}, &out, &errOut)
	if code != 2 || !strings.Contains(errOut.String(), "interrupted: context canceled") {
		t.Errorf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errOut.String())
	}
}
