package manifests

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

// The instance files of the hostile-input corpus (testdata/hostile/instances, README there)
// give their errors through the index, in process: the fast part of test/hostile, which runs
// them through kudod plan and the daemon's planning path in processes of their own.
func TestHostileInstanceFiles(t *testing.T) {
	root := filepath.Join("..", "testdata", "hostile", "instances")
	pkg := fstest.MapFS{}
	err := fs.WalkDir(os.DirFS(filepath.Join(root, "_package")), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(filepath.Join(root, "_package", p))
		pkg["operators/app/1.0.0/"+p] = &fstest.MapFile{Data: data}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	files, err := filepath.Glob(filepath.Join(root, "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			header := data
			if w, err := os.ReadFile(f + ".want"); err == nil {
				header = w
			}
			want := ""
			for line := range strings.Lines(string(header)) {
				line = strings.TrimRight(line, "\r\n")
				if v, ok := strings.CutPrefix(line, "# want: "); ok && want == "" {
					want = v
				}
				if v, ok := strings.CutPrefix(line, "# want-index: "); ok {
					want = v
				}
			}
			fsys := fstest.MapFS{"clusters/" + filepath.Base(f): &fstest.MapFile{Data: data}}
			for k, v := range pkg {
				fsys[k] = v
			}
			idx, err := IndexRepository(fsys, IndexOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(idx.Findings.Errors().Error(), want) {
				t.Fatalf("findings %v, want %q", idx.Findings.Errors(), want)
			}
		})
	}
}
