package manifests

import (
	"io/fs"
	"maps"
	"math/rand/v2"
	"reflect"
	"sort"
	"strings"
	"testing"
	"testing/fstest"
)

// hashedFS is a MapFS that knows its regular files' hashes, as sources' git snapshots do (a
// file's hash is its content), and counts reads, so that a test sees when the index read a file it
// should have reused.
type hashedFS struct {
	fstest.MapFS
	reads map[string]int
}

func (h hashedFS) FileHash(name string) (string, error) {
	f, ok := h.MapFS[name]
	if !ok || !f.Mode.IsRegular() {
		return "", &fs.PathError{Op: "hash", Path: name, Err: fs.ErrInvalid}
	}
	return string(f.Data), nil
}

func (h hashedFS) ReadFile(name string) ([]byte, error) {
	h.reads[name]++
	return h.MapFS.ReadFile(name)
}

func (h hashedFS) Open(name string) (fs.File, error) {
	if f, ok := h.MapFS[name]; ok && !f.Mode.IsDir() {
		h.reads[name]++
	}
	return h.MapFS.Open(name)
}

// plainCounted counts reads without knowing hashes: the index hashes what it reads.
type plainCounted struct {
	fstest.MapFS
	reads map[string]int
}

func (p plainCounted) ReadFile(name string) ([]byte, error) {
	p.reads[name]++
	return p.MapFS.ReadFile(name)
}

// sameIndex fails the test when two indexes differ in anything but the sharing of instances.
func sameIndex(t *testing.T, name string, got, want *Index) {
	t.Helper()
	for _, f := range []struct {
		name      string
		got, want any
	}{
		{"Packages", got.Packages, want.Packages}, {"BrokenPackages", got.BrokenPackages, want.BrokenPackages},
		{"Instances", got.Instances, want.Instances}, {"Invalid", got.Invalid, want.Invalid},
		{"InvalidFindings", got.InvalidFindings, want.InvalidFindings}, {"BrokenFiles", got.BrokenFiles, want.BrokenFiles},
		{"Encrypted", got.Encrypted, want.Encrypted}, {"DecryptErrors", got.DecryptErrors, want.DecryptErrors},
		{"Held", got.Held, want.Held}, {"Findings", got.Findings, want.Findings},
	} {
		if !reflect.DeepEqual(f.got, f.want) {
			t.Errorf("%s: %s differ from an index without Previous:\n got %#v\nwant %#v", name, f.name, f.got, f.want)
		}
	}
}

// TestIndexPreviousReusesUnchangedFiles indexes a series of commits, each with the index of
// the one before as Previous, and checks each against an index built from scratch: the same
// result (findings of strict checks and held findings included), with the instances of
// unchanged files shared (and those files not read again) as long as they resolve to the same
// package.
func TestIndexPreviousReusesUnchangedFiles(t *testing.T) {
	pinned := inst("data", "pinned", "    version: 1.0.0\n"+token)
	commits := []struct {
		name    string
		files   map[string]string
		version string // a package demo of this version is added when set
		// shared are the instances the index must share with the one before; changed those it
		// must not.
		shared, changed []string
		held            int // findings holding the commit
	}{
		{name: "first", files: map[string]string{
			"instances/a.yaml":      inst("data", "a", token),
			"instances/b.yaml":      inst("data", "b", token),
			"instances/pinned.yaml": pinned,
			"instances/multi.yaml":  inst("data", "m1", token) + "---\n" + inst("data", "m2", token),
			"instances/bad.yaml":    inst("data", "bad", token+"    REPLICAS: three\n"),
			"instances/broken.yaml": "apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: [x\n",
			"instances/other.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\n",
			// Strict checks: a key written twice, an Instance in a list, a misspelt kind, UTF-16.
			"instances/twice.yaml": inst("data", "twice", token) + "  suspend: true\n  suspend: false\n",
			"instances/list.yaml":  "apiVersion: v1\nkind: List\nitems:\n  - " + strings.ReplaceAll(inst("data", "listed", token), "\n", "\n    ") + "\n",
			"instances/kind.yaml":  strings.Replace(inst("data", "kind", token), "kind: Instance", "kind: instance", 1),
			"instances/utf16.yaml": "\xff\xfea\x00:\x00 \x00b\x00\n\x00",
		}, held: 5},
		{name: "one file changed", files: map[string]string{"instances/b.yaml": inst("data", "b", token+"    REPLICAS: 2\n")},
			shared: []string{"data/a", "data/pinned", "data/m1", "data/m2"}, changed: []string{"data/b"}, held: 5},
		{name: "nothing changed", shared: []string{"data/a", "data/b", "data/pinned", "data/m1", "data/m2"}, held: 5},
		{name: "a newer package", version: "1.2.0",
			shared: []string{"data/pinned"}, changed: []string{"data/a", "data/b", "data/m1", "data/m2"}, held: 5},
		// A new file declares an unchanged file's instance again: the commit is held, and
		// neither is taken.
		{name: "a duplicate and a fix", files: map[string]string{
			"instances/c.yaml":   inst("data", "a", token),
			"instances/bad.yaml": inst("data", "bad", token),
		}, shared: []string{"data/b", "data/pinned"}, held: 6},
		{name: "the duplicate removed", files: map[string]string{"instances/c.yaml": ""},
			shared: []string{"data/b", "data/pinned", "data/bad"}, held: 5},
		{name: "broken files fixed", files: map[string]string{
			"instances/broken.yaml": "", "instances/twice.yaml": "", "instances/list.yaml": "", "instances/kind.yaml": "", "instances/utf16.yaml": "",
		}, shared: []string{"data/a", "data/b", "data/pinned", "data/bad"}},
		// A duplicate inside an unchanged file of an earlier index: the new file comes first.
		{name: "a duplicate before an unchanged file", files: map[string]string{"instances/0.yaml": inst("data", "pinned", token)},
			shared: []string{"data/a", "data/b"}, held: 1},
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
		sameIndex(t, c.name, got, want)
		if len(got.Held) != c.held {
			t.Errorf("%s: %d held findings, want %d: %v", c.name, len(got.Held), c.held, got.Held)
		}
		for _, key := range c.shared {
			a, b := got.Instance(key), prev.Instance(key)
			if a == nil {
				a, b = invalidByKey(got, key), invalidByKey(prev, key)
			}
			if a == nil || a != b {
				t.Errorf("%s: instance %s is not shared with the index before", c.name, key)
				continue
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
		for f := range c.files {
			if _, still := repo[f]; still && fsys.reads[f] == 0 {
				t.Errorf("%s: %s changed and was not read", c.name, f)
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

// TestIndexPreviousHashesContent: on a file system that does not know hashes, the index hashes
// what it reads, and still shares the instances of files whose content is the same.
func TestIndexPreviousHashesContent(t *testing.T) {
	repo := demoRepo(map[string]string{"instances/a.yaml": inst("data", "a", token), "instances/b.yaml": inst("data", "b", token)})
	first, err := IndexRepository(repo, IndexOptions{Cache: NewPackageCache()})
	if err != nil {
		t.Fatal(err)
	}
	next := maps.Clone(repo)
	next["instances/b.yaml"] = &fstest.MapFile{Data: []byte(inst("data", "b", token+"    REPLICAS: 2\n"))}
	fsys := plainCounted{MapFS: next, reads: map[string]int{}}
	second, err := IndexRepository(fsys, IndexOptions{Cache: NewPackageCache(), Previous: first})
	if err != nil {
		t.Fatal(err)
	}
	// Another cache: other package pointers, so nothing resolved is shared, but nothing breaks.
	if second.Instance("data/a") == nil || second.Instance("data/a") == first.Instance("data/a") {
		t.Errorf("an instance resolved to another package must not be shared")
	}
	cache := NewPackageCache()
	first, _ = IndexRepository(repo, IndexOptions{Cache: cache})
	second, err = IndexRepository(fsys, IndexOptions{Cache: cache, Previous: first})
	if err != nil {
		t.Fatal(err)
	}
	if a := second.Instance("data/a"); a == nil || a != first.Instance("data/a") {
		t.Errorf("the unchanged file's instance is not shared")
	}
	if b := second.Instance("data/b"); b == nil || b.Parameters["REPLICAS"].Text != "2" {
		t.Errorf("the changed file's instance is %+v", b)
	}
}

// TestIndexPreviousReadsAgain: a file the earlier index could not read, or read under other
// conditions, is read again: the size limit and the kind of file apply to the commit indexed.
func TestIndexPreviousReadsAgain(t *testing.T) {
	a := inst("data", "a", token)
	cases := []struct {
		name string
		// before and after are the file instances/a.yaml and the size limit of each index.
		before, after         *fstest.MapFile
		beforeLimit, newLimit int64
		// reused: the instance is shared; broken: after, the file is broken with this message.
		reused bool
		broken string
	}{
		{name: "same file, same limit", before: &fstest.MapFile{Data: []byte(a)}, after: &fstest.MapFile{Data: []byte(a)}, reused: true},
		{name: "limit lowered below the file", before: &fstest.MapFile{Data: []byte(a)}, after: &fstest.MapFile{Data: []byte(a)},
			newLimit: 64, broken: "more than the 64 bytes limit"},
		{name: "limit raised above a refused file", before: &fstest.MapFile{Data: []byte(a)}, after: &fstest.MapFile{Data: []byte(a)},
			beforeLimit: 64},
		{name: "now a symbolic link with the same content", before: &fstest.MapFile{Data: []byte(a)}, after: &fstest.MapFile{Data: []byte(a), Mode: fs.ModeSymlink},
			broken: "cannot read"},
		{name: "no longer a symbolic link", before: &fstest.MapFile{Data: []byte(a), Mode: fs.ModeSymlink}, after: &fstest.MapFile{Data: []byte(a)}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cache := NewPackageCache()
			repo := demoRepo(nil)
			repo["instances/a.yaml"] = c.before
			fsys := hashedFS{MapFS: repo, reads: map[string]int{}}
			first, err := IndexRepository(fsys, IndexOptions{Cache: cache, MaxInstanceFileSize: c.beforeLimit})
			if err != nil {
				t.Fatal(err)
			}
			next := maps.Clone(repo)
			next["instances/a.yaml"] = c.after
			fsys = hashedFS{MapFS: next, reads: map[string]int{}}
			got, err := IndexRepository(fsys, IndexOptions{Cache: cache, MaxInstanceFileSize: c.newLimit, Previous: first})
			if err != nil {
				t.Fatal(err)
			}
			want, err := IndexRepository(next, IndexOptions{Cache: cache, MaxInstanceFileSize: c.newLimit})
			if err != nil {
				t.Fatal(err)
			}
			sameIndex(t, c.name, got, want)
			shared := got.Instance("data/a") != nil && got.Instance("data/a") == first.Instance("data/a")
			if shared != c.reused {
				t.Errorf("shared %v, want %v", shared, c.reused)
			}
			if c.broken != "" && !strings.Contains(got.BrokenFiles["instances/a.yaml"].Error(), c.broken) {
				t.Errorf("broken files %v, want one with %q", got.BrokenFiles, c.broken)
			}
			if c.broken == "" && got.Instance("data/a") == nil {
				t.Errorf("no instance: %v", got.Findings)
			}
		})
	}
}

// TestWalkLess: the order in which the index asks for an earlier index's files is the order
// fs.WalkDir visits them.
func TestWalkLess(t *testing.T) {
	names := []string{"a", "a.yaml", "a-b", "a0", "b", "A", "ä", "a b"}
	rnd := rand.New(rand.NewPCG(1, 2))
	fsys := fstest.MapFS{}
	for range 300 {
		var parts []string
		for range 1 + rnd.IntN(3) {
			parts = append(parts, names[rnd.IntN(len(names))])
		}
		p := strings.Join(parts, "/")
		if _, clash := fsys[p]; clash {
			continue
		}
		fsys[p+"/f.yaml"] = &fstest.MapFile{}
	}
	var walked []string
	if err := fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			walked = append(walked, p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if !sort.SliceIsSorted(walked, func(i, j int) bool { return walkLess(walked[i], walked[j]) }) {
		t.Errorf("walk order is not walkLess's: %v", walked)
	}
	for i := 1; i < len(walked); i++ {
		if !walkLess(walked[i-1], walked[i]) || walkLess(walked[i], walked[i-1]) {
			t.Errorf("walkLess(%q, %q) is wrong", walked[i-1], walked[i])
		}
	}
}
