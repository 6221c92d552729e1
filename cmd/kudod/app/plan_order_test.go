package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/kudod-dev/kudod/planner"
	"github.com/kudod-dev/kudod/test/testenv"
)

// orderedInstance is an instance file of the ordered package with spec lines.
func orderedInstance(name, spec string) string {
	return fmt.Sprintf("apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: %s\n  namespace: data\nspec:\n  operator:\n    name: ordered\n%s", name, spec)
}

// TestPlanShowsTheOrder: kudod plan prints and encodes the order of zk → kafka → app, which
// plan needs approval and when the windows open; a cycle or a missing dependency exits 2
// naming it.
func TestPlanShowsTheOrder(t *testing.T) {
	r := testenv.NewGitRepo(t)
	r.AddOperator("ordered", "1.0.0")
	ordered := r.Commit("zk, kafka, app", map[string]string{
		"instances/zk.yaml":    orderedInstance("zk", ""),
		"instances/kafka.yaml": orderedInstance("kafka", "  dependsOn: [{name: zk}]\n  approval: {plans: [deploy]}\n"),
		"instances/app.yaml":   orderedInstance("app", "  dependsOn: [{name: kafka, namespace: data}]\n  windows: [{schedule: \"0 22 * * 6\", duration: 4h, timeZone: Europe/Berlin}]\n"),
	})
	cycle := r.Commit("a cycle", map[string]string{"instances/zk.yaml": orderedInstance("zk", "  dependsOn: [{name: app}]\n")})
	missing := r.Commit("missing", map[string]string{"instances/zk.yaml": orderedInstance("zk", "  dependsOn: [{name: nosuch}]\n")})

	plan := func(args ...string) (string, int) {
		var out, errb bytes.Buffer
		code := Execute(context.Background(), append([]string{"plan", "--repo", r.Dir}, args...), &out, &errb)
		return out.String(), code
	}
	out, code := plan("--to", ordered)
	if code != 1 {
		t.Fatalf("exit %d:\n%s", code, out)
	}
	for _, want := range []string{
		"data/kafka: deploy, plan deploy\n  - new instance of ordered 1.0.0 (appVersion 1.0)\n  after: data/zk\n  approval: needed (kudod approve kafka -n data)\n",
		"  window: waiting for window Sat ",
		"order:\n  1. data/zk deploy\n     ↓\n  2. data/kafka deploy (after data/zk)\n     ↓\n  3. data/app deploy (after data/kafka)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	out, _ = plan("--to", ordered, "-o", "json")
	var res planner.Result
	if err := json.Unmarshal([]byte(out), &res); err != nil {
		t.Fatal(err)
	}
	if k := res.Decision("data/kafka"); k.Order != 2 || !k.NeedsApproval || strings.Join(k.DependsOn, ",") != "data/zk" {
		t.Errorf("kafka: %+v", k)
	}
	if a := res.Decision("data/app"); a.Order != 3 || a.Window == nil || a.Window.Open || a.Window.Next == nil {
		t.Errorf("app: %+v", a)
	}

	out, code = plan("--from", ordered, "--to", cycle)
	if code != 2 || !strings.Contains(out, "data/zk: rejected\n  error: spec.dependsOn: dependency cycle: data/zk → data/app → data/kafka → data/zk") {
		t.Errorf("a cycle: exit %d:\n%s", code, out)
	}
	out, code = plan("--from", ordered, "--to", missing)
	if code != 2 || !strings.Contains(out, "spec.dependsOn: data/nosuch does not exist in this repository") {
		t.Errorf("a missing dependency: exit %d:\n%s", code, out)
	}
	// Removal goes the other way.
	r.Git("rm", "-q", "-r", "instances")
	removed := r.Commit("remove all", nil)
	out, _ = plan("--from", ordered, "--to", removed, "--allow-empty")
	if !strings.Contains(out, "order:\n  1. data/app cleanup\n     ↓\n  2. data/kafka cleanup (after data/app)\n     ↓\n  3. data/zk cleanup (after data/kafka)\n") {
		t.Errorf("removal order:\n%s", out)
	}
}
