package hostile

import (
	"context"
	"fmt"
	"os"
	"testing"

	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/manifests"
	"github.com/kudod-dev/kudod/planner"
	"github.com/kudod-dev/kudod/sources"
)

// childEnv names the repository a child of the test binary plans, as the daemon does.
const childEnv = "KUDOD_HOSTILE_INDEX"

func TestMain(m *testing.M) {
	if repo := os.Getenv(childEnv); repo != "" {
		os.Exit(planLikeTheDaemon(repo))
	}
	os.Exit(m.Run())
}

// planLikeTheDaemon indexes a repository's HEAD and plans it as a poll does
// (internal/desired: IndexRepositoryContext, then planner.Diff against an empty cluster), then
// renders the deploy plan of each package that verified as an execution does (without a
// cluster), and prints what each step found.
func planLikeTheDaemon(repo string) int {
	ctx := context.Background()
	r, err := sources.Open(repo)
	if err != nil {
		fmt.Println("open:", err)
		return 1
	}
	defer r.Close()
	snap, err := r.SnapshotAt(ctx, "HEAD")
	if err != nil {
		fmt.Println("snapshot:", err)
		return 1
	}
	idx, err := manifests.IndexRepositoryContext(ctx, snap.FS, manifests.IndexOptions{Path: ".", Cache: manifests.NewPackageCache()})
	if err != nil {
		fmt.Println("index:", err)
		return 0
	}
	res := planner.Diff(planner.FromIndex(nil), planner.FromIndex(idx), planner.Options{})
	if res.Held != nil {
		fmt.Println("held:", res.Held)
	}
	for _, d := range res.Decisions {
		fmt.Printf("%s: %s %s %s\n", d.Key(), d.Action, d.Plan, d.Error)
	}
	for _, f := range idx.Findings.Errors() {
		fmt.Println(f)
	}
	for _, p := range idx.Packages {
		if _, err := applier.RenderOffline(ctx, p, "hostile", "hostile", manifests.PlanDeploy, nil); err != nil {
			fmt.Printf("render %s: %v\n", p.Dir, err)
		}
	}
	return 0
}
