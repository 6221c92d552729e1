package store

import (
	"context"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"

	"github.com/kudod-dev/kudod/sources"
	"github.com/kudod-dev/kudod/test/testenv"
)

// BenchmarkNewCommit indexes commits that each change one instance file of a repository of
// $KUDOD_BENCH_INSTANCES (1,000) files, as the poll does on every new commit, keeping every
// index in the store as it does (docs/scaling.md). It reports the time per commit and the
// heap the store holds once it keeps defaultLimit indexes.
func BenchmarkNewCommit(b *testing.B) {
	n := 1000
	if s := os.Getenv("KUDOD_BENCH_INSTANCES"); s != "" {
		v, err := strconv.Atoi(s)
		if err != nil || v < 1 {
			b.Fatalf("KUDOD_BENCH_INSTANCES=%q: want a positive number", s)
		}
		n = v
	}
	repo := testenv.NewGitRepo(b)
	repo.AddOperator("app", "1.0.0")
	instance := func(i, value int) string {
		return fmt.Sprintf("apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: app-%d\n  namespace: ns-%d\nspec:\n  operator:\n    name: app\n  parameters:\n    VALUE: \"%d\"\n", i, i%50, value)
	}
	files := map[string]string{}
	for i := range n {
		files[fmt.Sprintf("instances/ns-%d/app-%d.yaml", i%50, i)] = instance(i, 0)
	}
	commits := []string{repo.Commit("instances", files)}
	for c := 1; c <= defaultLimit+b.N; c++ {
		i := c % n
		commits = append(commits, repo.Commit("change one", map[string]string{fmt.Sprintf("instances/ns-%d/app-%d.yaml", i%50, i): instance(i, c)}))
	}
	git, err := sources.Open(repo.Dir)
	if err != nil {
		b.Fatal(err)
	}
	defer git.Close()
	ctx := context.Background()
	s := New()
	s.AddRepository("bench", git, ".")
	index := func(sha string) {
		snap, err := git.SnapshotAt(ctx, sha)
		if err != nil {
			b.Fatal(err)
		}
		idx, err := s.IndexSnapshot(ctx, "bench", snap)
		if err != nil {
			b.Fatal(err)
		}
		if len(idx.Instances) != n {
			b.Fatalf("%d instances, want %d: %v", len(idx.Instances), n, idx.Findings)
		}
	}
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	// The store fills up: the first commit, then defaultLimit-1 more.
	for _, sha := range commits[:defaultLimit] {
		index(sha)
	}
	var full runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&full)
	b.ResetTimer()
	for _, sha := range commits[defaultLimit : defaultLimit+b.N] {
		index(sha)
	}
	b.StopTimer()
	b.ReportMetric(float64(int64(full.HeapAlloc)-int64(before.HeapAlloc))/(1<<20), "store-MB")
	runtime.KeepAlive(s)
}
