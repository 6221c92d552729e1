package store

import (
	"context"
	"testing"

	"github.com/kudod-dev/kudod/sources"
	"github.com/kudod-dev/kudod/test/testenv"
)

// TestIndexSnapshotReusesTheLatestIndex: the index of a new commit shares the instances of
// files the commit did not change with the index before it, in whichever order commits come.
func TestIndexSnapshotReusesTheLatestIndex(t *testing.T) {
	repo := testenv.NewGitRepo(t)
	repo.AddOperator("app", "1.0.0")
	file := func(name, value string) string {
		return "apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: " + name + "\n  namespace: data\nspec:\n  operator:\n    name: app\n  parameters:\n    VALUE: " + value + "\n"
	}
	first := repo.Commit("two", map[string]string{"instances/a.yaml": file("a", "one"), "instances/b.yaml": file("b", "one")})
	second := repo.Commit("change b", map[string]string{"instances/b.yaml": file("b", "two")})
	git, err := sources.Open(repo.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer git.Close()
	s := New()
	s.AddRepository("platform", git, ".")
	ctx := context.Background()
	index := func(sha string) (a, b any) {
		t.Helper()
		snap, err := git.SnapshotAt(ctx, sha)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := s.IndexSnapshot("platform", snap)
		if err != nil {
			t.Fatal(err)
		}
		if idx.Instance("data/a") == nil || idx.Instance("data/b") == nil {
			t.Fatalf("instances missing: %v", idx.Findings)
		}
		return idx.Instance("data/a"), idx.Instance("data/b")
	}
	a1, b1 := index(first)
	a2, b2 := index(second)
	if a1 != a2 {
		t.Error("the unchanged file's instance is not shared with the index before")
	}
	if b1 == b2 {
		t.Error("the changed file's instance is shared")
	}
	// A force-push back to the first commit: b's old content is new to the latest index.
	a3, b3 := index(first)
	if a3 != a1 || b3 == b2 {
		t.Error("indexing the first commit again does not reuse the latest index as it should")
	}
}
