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
