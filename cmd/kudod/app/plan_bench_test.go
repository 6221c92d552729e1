package app

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/kudod-dev/kudod/test/testenv"
)

// BenchmarkPlan1000Instances times `kudod plan` between two commits of a repository with
// 1,000 instance files of one package (the second commit changes one parameter).
func BenchmarkPlan1000Instances(b *testing.B) {
	repo := testenv.NewGitRepo(b)
	repo.AddOperator("app", "1.0.0")
	instance := func(i int, value string) string {
		return fmt.Sprintf("apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: app-%d\n  namespace: ns-%d\nspec:\n  operator:\n    name: app\n  parameters:\n    VALUE: %s\n", i, i%50, value)
	}
	files := map[string]string{}
	for i := 0; i < 1000; i++ {
		files[fmt.Sprintf("instances/ns-%d/app-%d.yaml", i%50, i)] = instance(i, "one")
	}
	from := repo.Commit("1000 instances", files)
	to := repo.Commit("change one", map[string]string{"instances/ns-7/app-7.yaml": instance(7, "two")})
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		var out, errb bytes.Buffer
		if code := Execute(context.Background(), []string{"plan", "--repo", repo.Dir, "--from", from, "--to", to, "-o", "json"}, &out, &errb); code != 1 {
			b.Fatalf("exit %d: %s", code, errb.String())
		}
		if !strings.Contains(out.String(), `"action": "update"`) {
			b.Fatalf("unexpected plan: %s", out.String())
		}
	}
}
