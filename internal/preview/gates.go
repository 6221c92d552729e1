package preview

import (
	"fmt"
	"strings"

	"github.com/kudod-dev/kudod/planner"
)

// gateLines say in a preview when a decision's plan may start: after which plans, with
// approval, in which window (docs/operations.md).
func gateLines(d planner.Decision) string {
	if !d.Changes() {
		return ""
	}
	var b strings.Builder
	switch {
	case len(d.After) > 0:
		fmt.Fprintf(&b, "- runs after %s\n", codeList(d.After))
	case len(d.DependsOn) > 0 && d.Action != planner.ActionCleanup:
		fmt.Fprintf(&b, "- depends on %s (no plan of theirs in this change)\n", codeList(d.DependsOn))
	}
	if d.NeedsApproval {
		fmt.Fprintf(&b, "- ⏸ waits for approval once merged: `kudod approve %s -n %s`\n", d.Instance, d.Namespace)
	}
	if d.Window != nil {
		if d.Window.Open {
			b.WriteString("- 🕒 maintenance window: open now\n")
		} else {
			fmt.Fprintf(&b, "- 🕒 maintenance window: %s\n", d.Window.Message)
		}
	}
	return b.String()
}

// orderLine draws the order the plans run in, when some wait for others.
func orderLine(decisions []planner.Decision) string {
	res := planner.Result{Decisions: decisions}
	waves := res.Waves()
	if len(waves) < 2 {
		return ""
	}
	parts := make([]string, 0, len(waves))
	for i, w := range waves {
		parts = append(parts, fmt.Sprintf("%d. %s", i+1, codeList(w)))
	}
	return "\n**Order of plans:** " + strings.Join(parts, " → ") + "\n"
}

func codeList(keys []string) string {
	quoted := make([]string, len(keys))
	for i, k := range keys {
		quoted[i] = "`" + k + "`"
	}
	return strings.Join(quoted, ", ")
}
