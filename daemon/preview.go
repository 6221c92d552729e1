package daemon

import (
	"context"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/manifests"
	"github.com/kudod-dev/kudod/planner"
	"github.com/kudod-dev/kudod/sources"
)

// PreviewReport is what merging a ref would do to the cluster: the plan diff of the ref's head
// against what the cluster runs now (the Instances, not the base branch), and per instance
// the objects its plan would apply, delete or prune, each with a server-side dry-run diff.
type PreviewReport struct {
	Repository string
	Ref        string
	SHA        string
	// Decisions per instance, sorted.
	Decisions []planner.Decision
	// Changes holds each changing instance's objects, by key.
	Changes map[string][]applier.ObjectChange
	// Failures holds why an instance's plan cannot run (render or dry-run error), by key.
	Failures map[string]string
	// Held is set when the commit would remove every instance.
	Held error
	// sensitive are values of sensitive parameters, kept out of every line of the report.
	sensitive []string
}

// Valid reports whether the change can be merged: nothing rejected, everything renders.
func (r *PreviewReport) Valid() bool {
	if r.Held != nil || len(r.Failures) > 0 {
		return false
	}
	for _, d := range r.Decisions {
		if d.Action == planner.ActionRejected {
			return false
		}
	}
	return true
}

// Summary is one line: "3 instances: 2 update, 1 deploy", or why the change is not valid.
func (r *PreviewReport) Summary() string {
	if r.Held != nil {
		return r.Held.Error()
	}
	counts := map[planner.Action]int{}
	n := 0
	for _, d := range r.Decisions {
		if d.Action == planner.ActionNone {
			continue
		}
		n++
		counts[d.Action]++
	}
	if n == 0 {
		return "no instance changes"
	}
	var parts []string
	for _, a := range []planner.Action{planner.ActionRejected, planner.ActionDeploy, planner.ActionUpdate, planner.ActionUpgrade, planner.ActionCleanup} {
		if counts[a] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[a], a))
		}
	}
	if f := len(r.Failures); f > 0 {
		parts = append([]string{fmt.Sprintf("%d cannot run", f)}, parts...)
	}
	word := "instances"
	if n == 1 {
		word = "instance"
	}
	return fmt.Sprintf("%d %s: %s", n, word, strings.Join(parts, ", "))
}

// FirstProblem is the first reason the change is not valid, for a commit status.
func (r *PreviewReport) FirstProblem() string {
	if r.Held != nil {
		return r.Held.Error()
	}
	for _, d := range r.Decisions {
		if d.Action == planner.ActionRejected {
			return d.Key() + ": " + r.mask(d.Error)
		}
		if f, ok := r.Failures[d.Key()]; ok {
			return d.Key() + ": " + r.mask(f)
		}
	}
	return ""
}

// mask replaces values of sensitive parameters (three characters or more) with ***.
func (r *PreviewReport) mask(s string) string {
	for _, v := range r.sensitive {
		if len(v) >= 3 {
			s = strings.ReplaceAll(s, v, manifests.MaskedValue)
		}
	}
	return s
}

// previewer computes previews; it only reads the cluster and sends dryRun=All requests.
type previewer struct {
	client client.Client
	engine *applier.Engine
	store  *packageStore
	log    logr.Logger
}

// preview builds the report of a snapshot (a pull request's head) for a repository.
func (p *previewer) preview(ctx context.Context, repo Repository, snap sources.Snapshot) (*PreviewReport, error) {
	idx, err := manifests.IndexRepository(snap.FS, manifests.IndexOptions{Path: repo.Path, Cache: p.store.cache})
	if err != nil {
		return nil, fmt.Errorf("index %s at %s: %w", repo.Name, short(snap.Commit), err)
	}
	p.store.remember(repo.Name, snap.Commit, idx)
	var list v1alpha1.InstanceList
	if err := p.client.List(ctx, &list, client.MatchingLabels{v1alpha1.LabelRepository: repo.Name}); err != nil {
		return nil, fmt.Errorf("list instances of %s: %w", repo.Name, err)
	}
	existing := topLevel(list.Items)
	res := planner.Diff(clusterSide(ctx, p.store, repo.Name, existing, idx, p.log), planner.FromIndex(idx), planner.Options{AllowEmpty: repo.AllowEmpty, NoPrune: !repo.Prune})
	rep := &PreviewReport{Repository: repo.Name, Ref: snap.RefName, SHA: snap.Commit, Decisions: res.Decisions, Held: res.Held,
		Changes: map[string][]applier.ObjectChange{}, Failures: map[string]string{}}
	for _, in := range append(append([]*manifests.Instance{}, idx.Instances...), idx.Invalid...) {
		for k, v := range in.Parameters {
			if manifests.IsSensitive(k) {
				rep.sensitive = append(rep.sensitive, v.Text)
			}
		}
	}
	for _, in := range existing {
		for k, v := range in.Spec.Parameters {
			if manifests.IsSensitive(k) {
				rep.sensitive = append(rep.sensitive, v)
			}
		}
	}
	for i := range res.Decisions {
		d := &res.Decisions[i]
		if !d.Changes() || res.Held != nil {
			continue
		}
		changes, err := p.previewDecision(ctx, repo, snap, d, existing[d.Key()])
		if err != nil {
			rep.Failures[d.Key()] = err.Error()
			continue
		}
		rep.Changes[d.Key()] = changes
	}
	return rep, nil
}

func (p *previewer) previewDecision(ctx context.Context, repo Repository, snap sources.Snapshot, d *planner.Decision, existing *v1alpha1.Instance) ([]applier.ObjectChange, error) {
	if d.Action == planner.ActionCleanup {
		changes := []applier.ObjectChange{}
		if existing == nil {
			return changes, nil
		}
		return p.engine.PreviewDeletion(ctx, applier.NewInventory(existing.Status.Inventory))
	}
	inst := desiredInstance(repo.Name, snap.Commit, d.New.Instance, nil)
	inv := applier.Inventory{}
	if existing != nil {
		inst.UID = existing.UID
		inv = applier.NewInventory(existing.Status.Inventory)
	} else {
		inst.UID = types.UID("preview-" + d.Key())
	}
	inst.CreationTimestamp = metav1.Now()
	run := &applier.Run{
		Instance: inst, Package: d.New.Package, Plan: d.Plan, Params: inst.Spec.Parameters,
		Children: p.store.finder(repo.Name, snap.Commit), Inventory: inv,
	}
	return p.engine.Preview(ctx, run)
}

// previewMarker finds kudod's comment on a pull request.
func previewMarker(repository string) string { return "<!-- kudod-preview:" + repository + " -->" }

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
func (r *PreviewReport) Markdown(limit int) string {
	var b strings.Builder
	icon := "✅"
	if !r.Valid() {
		icon = "❌"
	}
	fmt.Fprintf(&b, "%s\n## kudod plan preview\n\n%s **%s** for `%s` at `%s`\n", previewMarker(r.Repository), icon, r.mask(r.Summary()), r.Ref, short(r.SHA))
	var sections []string
	for _, d := range r.Decisions {
		if d.Action == planner.ActionNone {
			continue
		}
		sections = append(sections, r.section(d))
	}
	if len(sections) == 0 && r.Held == nil {
		sections = append(sections, "\nNo plan runs: the change touches no instance.\n")
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
func (r *PreviewReport) section(d planner.Decision) string {
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
