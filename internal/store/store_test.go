package store

import (
	"context"
	"testing"

	"github.com/kudod-dev/kudod/internal/mask"
	"github.com/kudod-dev/kudod/manifests"
	"github.com/kudod-dev/kudod/sources"
	"github.com/kudod-dev/kudod/test/testenv"
)

func instanceFile(name, value, password string) string {
	return "apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: " + name + "\n  namespace: data\nspec:\n  operator:\n    name: app\n  parameters:\n    VALUE: " + value + "\n    DB_PASSWORD: " + password + "\n"
}

// TestIndexSnapshotReusesTheLatestIndex: the index of a new commit shares the instances of
// files the commit did not change with the index before it, in whichever order commits come,
// and the masker still learns the sensitive values of every instance, shared or not.
func TestIndexSnapshotReusesTheLatestIndex(t *testing.T) {
	repo := testenv.NewGitRepo(t)
	repo.AddOperator("app", "1.0.0")
	first := repo.Commit("two", map[string]string{
		"instances/a.yaml": instanceFile("a", "one", "a-first-password"),
		"instances/b.yaml": instanceFile("b", "one", "b-first-password"),
	})
	second := repo.Commit("change b", map[string]string{"instances/b.yaml": instanceFile("b", "two", "b-second-password")})
	git, err := sources.Open(repo.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer git.Close()
	s := New()
	s.AddRepository("platform", git, ".")
	ctx := context.Background()
	index := func(sha string) (a, b *manifests.Instance) {
		t.Helper()
		snap, err := git.SnapshotAt(ctx, sha)
		if err != nil {
			t.Fatal(err)
		}
		idx, err := s.IndexSnapshot(ctx, "platform", snap)
		if err != nil {
			t.Fatal(err)
		}
		if idx.Instance("data/a") == nil || idx.Instance("data/b") == nil {
			t.Fatalf("instances missing: %v", idx.Findings)
		}
		return idx.Instance("data/a"), idx.Instance("data/b")
	}
	a1, b1 := index(first)
	// A masker that has not seen the first index: it learns a's password from the second,
	// where a's instance is the first's.
	m := mask.New()
	s.SetMasker(m)
	a2, b2 := index(second)
	if a1 != a2 {
		t.Error("the unchanged file's instance is not shared with the index before")
	}
	if b1 == b2 || b2.Parameters["VALUE"].Text != "two" {
		t.Error("the changed file's instance is shared")
	}
	for _, v := range []string{"a-first-password", "b-second-password"} {
		if got := m.Mask("x " + v + " y"); got != "x <sensitive> y" {
			t.Errorf("the masker did not learn %s: %q", v, got)
		}
	}
	// A force-push back to the first commit: b's old content is new to the latest index.
	a3, b3 := index(first)
	if a3 != a1 || b3 == b2 || b3.Parameters["VALUE"].Text != "one" {
		t.Error("indexing the first commit again does not reuse the latest index as it should")
	}
	// An older commit read from git again (evicted, or after a restart) reuses the latest too.
	s.mu.Lock()
	s.indexes = map[string]*indexEntry{}
	s.order = nil
	s.mu.Unlock()
	in, err := s.Instance(ctx, "platform", second, "data/a")
	if err != nil || in != a1 {
		t.Errorf("the instance of an index read from git again is not shared: %v", err)
	}
}
