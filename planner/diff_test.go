package planner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/kudod-dev/kudod/manifests"
)

// repoFS builds a repository tree holding the lifecycle package and the given instance files.
func repoFS(t *testing.T, files map[string]string) fstest.MapFS {
	t.Helper()
	fsys := fstest.MapFS{}
	root := filepath.Join("testdata", "lifecycle", "1.0.0")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		fsys["operators/lifecycle/1.0.0/"+filepath.ToSlash(rel)] = &fstest.MapFile{Data: data}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		fsys[name] = &fstest.MapFile{Data: []byte(content)}
	}
	return fsys
}

func instanceDoc(ns, name string, params string) string {
	return "apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: " + name + "\n  namespace: " + ns + "\nspec:\n  operator:\n    name: lifecycle\n" + params
}

func side(t *testing.T, files map[string]string) Side {
	t.Helper()
	idx, err := manifests.IndexRepository(repoFS(t, files), manifests.IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return FromIndex(idx)
}

func TestDiff(t *testing.T) {
	a := instanceDoc("data", "a", "")
	b := instanceDoc("data", "b", "")
	aReplicas := instanceDoc("data", "a", "  parameters:\n    REPLICAS: 3\n")
	aUnknown := instanceDoc("data", "a", "  parameters:\n    NOPE: 3\n")
	base := map[string]string{"instances/data/a.yaml": a, "instances/data/b.yaml": b}

	type want struct {
		action    Action
		plan, err string
	}
	cases := []struct {
		name     string
		old, new map[string]string
		opts     Options
		held     bool
		want     map[string]want
	}{
		{name: "empty from: everything is new", old: nil, new: base,
			want: map[string]want{"data/a": {ActionDeploy, "deploy", ""}, "data/b": {ActionDeploy, "deploy", ""}}},
		{name: "one parameter changed", old: base, new: map[string]string{"instances/data/a.yaml": aReplicas, "instances/data/b.yaml": b},
			want: map[string]want{"data/a": {ActionUpdate, "update", ""}, "data/b": {ActionNone, "", ""}}},
		{name: "unparseable file is rejected, never removed, and holds the commit", old: base, new: map[string]string{"instances/data/a.yaml": "apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata: [", "instances/data/b.yaml": b}, held: true,
			want: map[string]want{"data/a": {ActionRejected, "", "instances/data/a.yaml cannot be read"}, "data/b": {ActionNone, "", ""}}},
		{name: "a new unreadable file holds the commit", old: base, new: map[string]string{"instances/data/a.yaml": aReplicas, "instances/data/b.yaml": b, "instances/data/c.yaml": "apiVersion: kudod.dev/v2\nkind: Instance\nmetadata: {name: c, namespace: data}\n"}, held: true,
			want: map[string]want{"data/a": {ActionRejected, "", "the commit is held: instances/data/c.yaml:1: Instance with unsupported apiVersion"}, "data/b": {ActionNone, "", ""}}},
		{name: "an instance declared twice holds the commit", old: base, new: map[string]string{"instances/data/a.yaml": a, "instances/data/b.yaml": b, "instances/data/c.yaml": aReplicas}, held: true,
			want: map[string]want{"data/a": {ActionRejected, "", "declared twice: in instances/data/a.yaml:4 and here"}, "data/b": {ActionNone, "", ""}}},
		{name: "invalid instance is rejected and the others are planned", old: base, new: map[string]string{"instances/data/a.yaml": aUnknown, "instances/data/b.yaml": instanceDoc("data", "b", "  parameters:\n    REPLICAS: 2\n")},
			want: map[string]want{"data/a": {ActionRejected, "", "unknown parameter"}, "data/b": {ActionUpdate, "update", ""}}},
		{name: "removed instance runs cleanup", old: base, new: map[string]string{"instances/data/b.yaml": b},
			want: map[string]want{"data/a": {ActionCleanup, "cleanup", ""}, "data/b": {ActionNone, "", ""}}},
		{name: "prune false reports a removal", old: base, new: map[string]string{"instances/data/b.yaml": b}, opts: Options{NoPrune: true},
			want: map[string]want{"data/a": {ActionNone, "", ""}, "data/b": {ActionNone, "", ""}}},
		{name: "removing every instance is held", old: base, new: map[string]string{"README.md": "empty"}, held: true,
			want: map[string]want{"data/a": {ActionRejected, "", "removes every instance"}, "data/b": {ActionRejected, "", "removes every instance"}}},
		{name: "allowEmpty lets a commit remove every instance", old: base, new: map[string]string{}, opts: Options{AllowEmpty: true},
			want: map[string]want{"data/a": {ActionCleanup, "cleanup", ""}, "data/b": {ActionCleanup, "cleanup", ""}}},
		{name: "instance moved to another file is the same instance", old: base, new: map[string]string{"instances/all.yaml": a + "\n---\n" + b},
			want: map[string]want{"data/a": {ActionNone, "", ""}, "data/b": {ActionNone, "", ""}}},
		{name: "broken package rejects its instances", old: base, new: map[string]string{"instances/data/a.yaml": a, "instances/data/b.yaml": b, "operators/lifecycle/1.0.0/templates/config.yaml": "{{ .Params.MISSING }}"},
			want: map[string]want{"data/a": {ActionRejected, "", "broken"}, "data/b": {ActionRejected, "", "broken"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var old Side
			if c.old == nil {
				old = FromIndex(nil)
			} else {
				old = side(t, c.old)
			}
			res := Diff(old, side(t, c.new), c.opts)
			if (res.Held != nil) != c.held {
				t.Fatalf("held = %v, want %v", res.Held, c.held)
			}
			if len(res.Decisions) != len(c.want) {
				t.Fatalf("got %d decisions %+v, want %d", len(res.Decisions), res.Decisions, len(c.want))
			}
			for key, w := range c.want {
				d := res.Decision(key)
				if d == nil {
					t.Fatalf("no decision for %s", key)
				}
				if d.Action != w.action || d.Plan != w.plan || !strings.Contains(d.Error, w.err) {
					t.Errorf("%s: got %s %q %q, want %s %q containing %q", key, d.Action, d.Plan, d.Error, w.action, w.plan, w.err)
				}
			}
		})
	}
}
