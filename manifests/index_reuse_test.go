package manifests

import (
	"maps"
	"reflect"
	"testing"
	"testing/fstest"
)

// hashedFS is a MapFS that knows its files' hashes, as sources' git snapshots do: a file's
// hash is its content, so that a test sees when the index read a file it should have reused.
type hashedFS struct {
	fstest.MapFS
	reads map[string]int
}

func (h hashedFS) FileHash(name string) (string, error) {
	f, ok := h.MapFS[name]
	if !ok {
		return "", &pathError{name}
	}
	return string(f.Data), nil
}

func (h hashedFS) ReadFile(name string) ([]byte, error) {
	h.reads[name]++
	return h.MapFS.ReadFile(name)
}

type pathError struct{ name string }

func (e *pathError) Error() string { return e.name + ": not found" }

// TestIndexPreviousReusesUnchangedFiles indexes a series of commits, each with the index of
// the one before as Previous, and checks each against an index built from scratch: the same
// result, with the instances of unchanged files shared (and those files not read again) as
// long as they resolve to the same package.
func TestIndexPreviousReusesUnchangedFiles(t *testing.T) {
	pinned := inst("data", "pinned", "    version: 1.0.0\n"+token)
	commits := []struct {
		name    string
		files   map[string]string
		version string // a package demo of this version is added when set
		// shared are the instances the index must share with the one before; changed those it
		// must not.
		shared, changed []string
	}{
		{name: "first", files: map[string]string{
			"instances/a.yaml":      inst("data", "a", token),
			"instances/b.yaml":      inst("data", "b", token),
			"instances/pinned.yaml": pinned,
			"instances/multi.yaml":  inst("data", "m1", token) + "---\n" + inst("data", "m2", token),
			"instances/bad.yaml":    inst("data", "bad", token+"    REPLICAS: three\n"),
			"instances/broken.yaml": "apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: [x\n",
			"instances/other.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
		}},
		{name: "one file changed", files: map[string]string{"instances/b.yaml": inst("data", "b", token+"    REPLICAS: 2\n")},
			shared: []string{"data/a", "data/pinned", "data/m1", "data/m2"}, changed: []string{"data/b"}},
		{name: "nothing changed", shared: []string{"data/a", "data/b", "data/pinned", "data/m1", "data/m2"}},
		{name: "a newer package", version: "1.2.0",
			shared: []string{"data/pinned"}, changed: []string{"data/a", "data/b", "data/m1", "data/m2"}},
		{name: "a duplicate and a fix", files: map[string]string{
			"instances/c.yaml":   inst("data", "a", token),
			"instances/bad.yaml": inst("data", "bad", token),
		}, shared: []string{"data/a", "data/b", "data/pinned"}},
		{name: "a file removed", files: map[string]string{"instances/c.yaml": ""},
			shared: []string{"data/a", "data/b", "data/pinned", "data/bad"}},
	}
	cache := NewPackageCache()
	repo := demoRepo(nil)
	var prev *Index
	for _, c := range commits {
		next := maps.Clone(repo)
		for k, v := range c.files {
			if v == "" {
				delete(next, k)
				continue
			}
			next[k] = &fstest.MapFile{Data: []byte(v)}
		}
		if c.version != "" {
			demoPackage(next, "operators/demo/"+c.version, c.version, "")
		}
		repo = next
		fsys := hashedFS{MapFS: repo, reads: map[string]int{}}
		got, err := IndexRepository(fsys, IndexOptions{Cache: cache, Previous: prev})
		if err != nil {
			t.Fatal(err)
		}
		want, err := IndexRepository(repo, IndexOptions{Cache: cache})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range []struct {
			name      string
			got, want any
		}{
			{"Packages", got.Packages, want.Packages}, {"BrokenPackages", got.BrokenPackages, want.BrokenPackages},
			{"Instances", got.Instances, want.Instances}, {"Invalid", got.Invalid, want.Invalid},
			{"InvalidFindings", got.InvalidFindings, want.InvalidFindings}, {"BrokenFiles", got.BrokenFiles, want.BrokenFiles},
			{"Findings", got.Findings, want.Findings},
		} {
			if !reflect.DeepEqual(f.got, f.want) {
				t.Errorf("%s: %s differ from an index without Previous:\n got %#v\nwant %#v", c.name, f.name, f.got, f.want)
			}
		}
		for _, key := range c.shared {
			a, b := got.Instance(key), prev.Instance(key)
			if a == nil {
				a, b = invalidByKey(got, key), invalidByKey(prev, key)
			}
			if a == nil || a != b {
				t.Errorf("%s: instance %s is not shared with the index before", c.name, key)
			}
			if n := fsys.reads[a.File]; n > 0 {
				t.Errorf("%s: %s was read again (%d times) though it did not change", c.name, a.File, n)
			}
		}
		for _, key := range c.changed {
			if a := got.Instance(key); a == nil || a == prev.Instance(key) {
				t.Errorf("%s: instance %s should be resolved again, is %p", c.name, key, a)
			}
		}
		prev = got
	}
}

func invalidByKey(idx *Index, key string) *Instance {
	for _, in := range idx.Invalid {
		if in.Key() == key {
			return in
		}
	}
	return nil
}
