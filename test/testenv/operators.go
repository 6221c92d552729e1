package testenv

import (
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"testing"
)

// CatalogEnv names the directory of public KUDO packages (<name>/<version>/) that the
// TestCatalog... tests read. Without it they are skipped; `make test` says which.
const CatalogEnv = "KUDOD_OPERATORS_DIR"

// FixtureOperatorsDir returns the repository's testdata/operators: KUDO packages written for
// kudod's tests (testdata/operators/README.md says what each exercises).
func FixtureOperatorsDir(t testing.TB) string {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "testdata", "operators")
}

// FixtureOperator returns the directory of the test package name at version (a directory
// name under testdata/operators/<name>).
func FixtureOperator(t testing.TB, name, version string) string {
	t.Helper()
	return packageDir(t, FixtureOperatorsDir(t), name, version)
}

// FixtureOperatorFiles returns the files of a test package as a repository holds them, keyed
// operators/<name>/<version>/<path>: for a test that commits them with files of its own.
func FixtureOperatorFiles(t testing.TB, name, version string) map[string]string {
	t.Helper()
	return packageFiles(t, FixtureOperator(t, name, version), name, version)
}

// CatalogDir returns the directory of public KUDO packages named by $KUDOD_OPERATORS_DIR, and
// skips the test when it is unset. A value that is not an absolute path to a directory fails
// the test: tests run in their package's directory, so a relative path would mean something
// else in each (the Makefile makes it absolute).
func CatalogDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv(CatalogEnv)
	if dir == "" {
		t.Skipf("%s is not set: this test reads the public KUDO packages; run it with %s=/path/to/operators (<name>/<version>/ directories)", CatalogEnv, CatalogEnv)
	}
	if !filepath.IsAbs(dir) {
		t.Fatalf("%s=%s: must be an absolute path", CatalogEnv, dir)
	}
	if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
		t.Fatalf("%s=%s is not a directory of KUDO packages: %v", CatalogEnv, dir, err)
	}
	return dir
}

// CatalogOperator returns the directory of the public package name at version, skipping the
// test as CatalogDir does.
func CatalogOperator(t testing.TB, name, version string) string {
	t.Helper()
	return packageDir(t, CatalogDir(t), name, version)
}

// PackageDirs lists the package directories under root (<name>/<version>/ holding an
// operator.yaml), sorted; none fails the test.
func PackageDirs(t testing.TB, root string) []string {
	t.Helper()
	matches, err := filepath.Glob(filepath.Join(root, "*", "*", "operator.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(matches) == 0 {
		t.Fatalf("no KUDO packages (<name>/<version>/operator.yaml) in %s", root)
	}
	dirs := make([]string, len(matches))
	for i, m := range matches {
		dirs[i] = filepath.Dir(m)
	}
	sort.Strings(dirs)
	return dirs
}

func packageDir(t testing.TB, root, name, version string) string {
	t.Helper()
	dir := filepath.Join(root, name, version)
	if _, err := os.Stat(filepath.Join(dir, "operator.yaml")); err != nil {
		t.Fatalf("package %s/%s: %v", name, version, err)
	}
	return dir
}

// packageFiles reads the package in dir into a map keyed operators/<name>/<version>/<path>.
func packageFiles(t testing.TB, dir, name, version string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		data, err := os.ReadFile(p)
		files[filepath.ToSlash(filepath.Join("operators", name, version, rel))] = string(data)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}
