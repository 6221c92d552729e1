package preview

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/planner"
)

// Marker finds kudod's comment of a repository on a pull request: a hidden HTML comment.
func Marker(repository string) string { return "<!-- kudod-preview:" + repository + " -->" }

var pullRequestRef = regexp.MustCompile(`^refs/(?:pull|merge-requests)/(\d+)/head$`)

// pullRequestNumber reads the pull (merge) request number of a ref, or 0.
func pullRequestNumber(ref string) int {
	m := pullRequestRef.FindStringSubmatch(ref)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(m[1])
	return n
}

// Markdown renders the report for a pull request comment of at most limit characters: a
// summary line, then per instance the plan, the reasons and the changed objects. Long diffs
// are cut, and what did not fit is counted.
func (r *Report) Markdown(limit int) string {
	var b strings.Builder
	icon := "✅"
	if !r.Valid() {
		icon = "❌"
	}
	fmt.Fprintf(&b, "%s\n## kudod plan preview\n\n%s **%s** for `%s` at `%s`\n", Marker(r.Repository), icon, r.mask(r.Summary()), r.Ref, v1alpha1.ShortRevision(r.SHA))
	var sections []string
	if o := orderLine(r.Decisions); o != "" {
		sections = append(sections, o)
	}
	for _, d := range r.Decisions {
		if d.Action == planner.ActionNone {
			continue
		}
		sections = append(sections, r.section(d))
	}
	if len(sections) == 0 && r.Held == nil {
		sections = append(sections, "\nNo plan runs: the change touches no instance.\n")
	}
	for _, e := range r.Encrypted {
		sections = append(sections, "\n🔒 `"+e+"`\n")
	}
	footer := "\n<sub>kudod computed this with server-side dry-run requests against the cluster; nothing was changed. Secret data and sensitive parameters are masked.</sub>\n"
	budget := limit - b.Len() - len(footer) - 200
	left := 0
	for i, s := range sections {
		if len(s) > budget {
			s = cutSection(s, budget)
			if s == "" {
				left = len(sections) - i
				break
			}
		}
		b.WriteString(s)
		budget -= len(s)
	}
	if left > 0 {
		fmt.Fprintf(&b, "\n… %d more instances left out: the comment would be longer than the forge allows. Run `kudod preview` to see everything.\n", left)
	}
	b.WriteString(footer)
	return r.mask(b.String())
}

// section renders one instance's decision and objects.
func (r *Report) section(d planner.Decision) string {
	var b strings.Builder
	switch d.Action {
	case planner.ActionRejected:
		fmt.Fprintf(&b, "\n### ❌ `%s`: rejected\n\n%s\n", d.Key(), quote(d.Error))
	default:
		plan := "`" + d.Plan + "`"
		if d.Plan == "" {
			plan = "none (its objects are deleted)"
		}
		fmt.Fprintf(&b, "\n### `%s`: %s → plan %s\n", d.Key(), d.Action, plan)
	}
	for _, reason := range d.Reasons {
		fmt.Fprintf(&b, "- %s\n", reason)
	}
	b.WriteString(gateLines(d))
	if f, ok := r.Failures[d.Key()]; ok {
		fmt.Fprintf(&b, "\n❌ The plan cannot run:\n%s\n", quote(f))
	}
	changes := r.Changes[d.Key()]
	counts := map[string]int{}
	for _, c := range changes {
		counts[c.Action]++
	}
	if len(changes) > 0 {
		var parts []string
		for _, a := range []string{applier.ChangeCreated, applier.ChangeConfigured, applier.ChangeDeleted, applier.ChangePruned, applier.ChangeUnchanged} {
			if counts[a] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", counts[a], a))
			}
		}
		fmt.Fprintf(&b, "\nObjects: %s\n\n", strings.Join(parts, ", "))
	}
	sort.SliceStable(changes, func(i, j int) bool {
		return changes[i].Action == applier.ChangeConfigured && changes[j].Action != applier.ChangeConfigured
	})
	for _, c := range changes {
		if c.Action == applier.ChangeUnchanged {
			continue
		}
		line := fmt.Sprintf("- `%s` %s", c.Object, c.Action)
		if c.Note != "" {
			line += " (" + c.Note + ")"
		}
		b.WriteString(line + "\n")
		if c.Diff != "" {
			fmt.Fprintf(&b, "\n  ```diff\n%s  ```\n", indent(c.Diff, "  "))
		}
	}
	return b.String()
}

// cutSection shortens a section to budget characters at a line end, noting how much was cut;
// "" when not even its heading fits.
func cutSection(s string, budget int) string {
	if budget < 200 {
		return ""
	}
	lines := strings.SplitAfter(s, "\n")
	var b strings.Builder
	inCode := false
	for i, l := range lines {
		if b.Len()+len(l) > budget-120 {
			if inCode {
				b.WriteString("  ```\n")
			}
			fmt.Fprintf(&b, "\n… %d more lines left out.\n", len(lines)-i)
			break
		}
		if strings.Contains(l, "```") {
			inCode = !inCode
		}
		b.WriteString(l)
	}
	return b.String()
}

func quote(s string) string { return "> " + strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n> ") }

func indent(s, prefix string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, l := range lines {
		if l != "" {
			lines[i] = prefix + l
		}
	}
	return strings.Join(lines, "")
}
