package preview

import (
	"strings"
	"testing"
	"time"

	"github.com/kudod-dev/kudod/planner"
)

// TestMarkdownShowsTheOrder: a preview says which plans run after which, which wait for
// approval and when the windows open.
func TestMarkdownShowsTheOrder(t *testing.T) {
	next := time.Date(2026, 12, 26, 21, 0, 0, 0, time.UTC)
	zk := planner.Decision{Namespace: "data", Instance: "zk", Action: planner.ActionDeploy, Plan: "deploy", Order: 1}
	kafka := planner.Decision{Namespace: "data", Instance: "kafka", Action: planner.ActionDeploy, Plan: "deploy", Order: 2, After: []string{"data/zk"}, DependsOn: []string{"data/zk"}, NeedsApproval: true}
	app := planner.Decision{Namespace: "data", Instance: "app", Action: planner.ActionUpdate, Plan: "update", Order: 1, DependsOn: []string{"data/db"},
		Window: &planner.WindowInfo{Next: &next, Message: "waiting for window Sat 22:00 CET"}}
	rep := Report{Repository: "platform", Ref: "refs/pull/7/head", SHA: sha, Decisions: []planner.Decision{app, kafka, zk}}
	md := rep.Markdown(65536)
	for _, want := range []string{
		"**Order of plans:** 1. `data/app`, `data/zk` → 2. `data/kafka`",
		"### `data/app`: update → plan `update`\n- depends on `data/db` (no plan of theirs in this change)\n- 🕒 maintenance window: waiting for window Sat 22:00 CET\n",
		"### `data/kafka`: deploy → plan `deploy`\n- runs after `data/zk`\n- ⏸ waits for approval once merged: `kudod approve kafka -n data`\n",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the preview lacks %q:\n%s", want, md)
		}
	}
}
