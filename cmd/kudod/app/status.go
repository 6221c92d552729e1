package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/xlab/treeprint"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/duration"
	"sigs.k8s.io/controller-runtime/pkg/client"
	sigsyaml "sigs.k8s.io/yaml"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

func newStatusCommand(s streams) *cobra.Command {
	var (
		kf       kubeFlags
		all      bool
		watch    bool
		output   string
		sources  bool
		daemonNS string
		tree     bool
	)
	cmd := &cobra.Command{
		Use:   "status [INSTANCE]",
		Short: "Show instances and their plans: a table, or KUDO's plan tree for one instance",
		Long: `Show instances and their plans. Several instances (-n NS, or -A for every namespace) print as
a table: NAMESPACE (with -A), NAME, OPERATOR, VERSION, the running plan or else the last one
(PLAN, STATUS), the REVISION it applied and the instance's AGE. One instance (kudod status
NAME -n NS), or any with --tree, prints as KUDO's plan tree (kubectl kudo plan status).
With --watch the table prints again the rows that change, and trees are drawn again every
second, until no plan runs. -o json and -o yaml print every instance with its current plan
(docs/cli.md).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch output {
			case "", "text", "json", "yaml":
			default:
				return exitCode(2, fmt.Errorf("unknown output format %q (text, json, yaml)", output))
			}
			c, ns, err := kf.client()
			if err != nil {
				return exitCode(2, err)
			}
			if sources {
				return printSources(cmd.Context(), s, c, daemonNS, output)
			}
			name := ""
			if len(args) == 1 {
				name = args[0]
			}
			p := &statusPrinter{w: s.Out, output: output, tree: tree || name != "", allNamespaces: all && name == ""}
			for {
				list, err := listInstances(cmd.Context(), c, ns, name, all)
				if err != nil {
					return exitCode(2, err)
				}
				if err := p.print(list, time.Now()); err != nil {
					return exitCode(2, err)
				}
				if !watch || allSettled(list) {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(time.Second):
				}
			}
		},
	}
	kf.add(cmd.Flags(), true)
	cmd.ValidArgsFunction = completeInstances(&kf)
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list instances of every namespace")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print what changes, every second, until no plan runs")
	cmd.Flags().BoolVar(&tree, "tree", false, "print each instance as KUDO's plan tree, not as a table row")
	cmd.Flags().StringVarP(&output, "output", "o", "", "output format: text, json or yaml")
	cmd.Flags().BoolVar(&sources, "sources", false, "show each repository's last fetched revision, last poll and last error")
	cmd.Flags().StringVar(&daemonNS, "daemon-namespace", defaultDaemonNamespace, "the daemon's namespace (its --leader-election-namespace), for --sources")
	return cmd
}

func listInstances(ctx context.Context, c client.Client, ns, name string, all bool) ([]v1alpha1.Instance, error) {
	if name != "" {
		inst := &v1alpha1.Instance{}
		if err := c.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, inst); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("instance %q not found in namespace %q", name, ns)
			}
			return nil, err
		}
		return []v1alpha1.Instance{*inst}, nil
	}
	var list v1alpha1.InstanceList
	opts := []client.ListOption{}
	if !all {
		opts = append(opts, client.InNamespace(ns))
	}
	if err := c.List(ctx, &list, opts...); err != nil {
		return nil, fmt.Errorf("list instances: %w", err)
	}
	sort.Slice(list.Items, func(i, j int) bool {
		a, b := list.Items[i], list.Items[j]
		if a.Namespace != b.Namespace {
			return a.Namespace < b.Namespace
		}
		return a.Name < b.Name
	})
	return list.Items, nil
}

func allSettled(list []v1alpha1.Instance) bool {
	for _, in := range list {
		if in.Status.ActivePlan != nil {
			return false
		}
	}
	return true
}

// statusJSON is `kudod status -o json` (docs/cli.md): scripts depend on every field.
type statusJSON struct {
	Instances []instanceJSON `json:"instances"`
}

type instanceJSON struct {
	Namespace string    `json:"namespace"`
	Name      string    `json:"name"`
	Operator  string    `json:"operator"`
	Version   string    `json:"version"`
	Revision  string    `json:"revision"`
	Suspended bool      `json:"suspended,omitempty"`
	Plan      *planJSON `json:"plan"`
	// RolledBack and LastRuns: docs/recovery.md.
	RolledBack *v1alpha1.RollbackMark `json:"rolledBack,omitempty"`
	LastRuns   []lastRunJSON          `json:"lastRuns,omitempty"`
	// Waiting is the plan that waits to start, and for what (docs/operations.md).
	Waiting *waitingJSON `json:"waiting,omitempty"`
}

type waitingJSON struct {
	Plan     string     `json:"plan"`
	Revision string     `json:"revision,omitempty"`
	Reason   string     `json:"reason"`
	Message  string     `json:"message"`
	Since    time.Time  `json:"since"`
	Until    *time.Time `json:"until,omitempty"`
}

type planJSON struct {
	Name    string      `json:"name"`
	Status  string      `json:"status"`
	Trigger string      `json:"trigger"`
	Message string      `json:"message,omitempty"`
	Phases  []phaseJSON `json:"phases"`
}

type phaseJSON struct {
	Name   string     `json:"name"`
	Status string     `json:"status"`
	Steps  []stepJSON `json:"steps"`
}

type stepJSON struct {
	Name    string `json:"name"`
	Status  string `json:"status"`
	Message string `json:"message"`
}

// currentPlan is the running plan, or else the last one (KUDO's Active-Plan).
func currentPlan(in *v1alpha1.Instance) *v1alpha1.PlanStatus {
	name := ""
	switch {
	case in.Status.ActivePlan != nil:
		name = in.Status.ActivePlan.Name
	case in.Status.LastPlan != nil:
		name = in.Status.LastPlan.Name
	}
	for i := range in.Status.Plans {
		if in.Status.Plans[i].Name == name {
			return &in.Status.Plans[i]
		}
	}
	return nil
}

func toJSON(list []v1alpha1.Instance) statusJSON {
	out := statusJSON{Instances: []instanceJSON{}}
	for i := range list {
		in := &list[i]
		ij := instanceJSON{Namespace: in.Namespace, Name: in.Name, Operator: in.Spec.Operator.Name, Version: in.Spec.Operator.Version, Revision: in.Spec.Source.Revision, Suspended: in.Spec.Suspend}
		if in.Status.Applied != nil {
			ij.Revision = in.Status.Applied.Revision
		}
		if w := in.Status.Waiting; w != nil {
			ij.Waiting = &waitingJSON{Plan: w.Name, Revision: w.Revision, Reason: string(w.Reason), Message: w.Message, Since: w.Since.UTC()}
			if w.Until != nil {
				u := w.Until.UTC()
				ij.Waiting.Until = &u
			}
		}
		if ps := currentPlan(in); ps != nil {
			pj := &planJSON{Name: ps.Name, Status: string(ps.Status), Trigger: string(ps.Trigger), Message: ps.Message, Phases: []phaseJSON{}}
			for _, ph := range ps.Phases {
				phj := phaseJSON{Name: ph.Name, Status: string(ph.Status), Steps: []stepJSON{}}
				for _, st := range ph.Steps {
					phj.Steps = append(phj.Steps, stepJSON{Name: st.Name, Status: string(st.Status), Message: st.Message})
				}
				pj.Phases = append(pj.Phases, phj)
			}
			ij.Plan = pj
		}
		ij.RolledBack, ij.LastRuns = in.Status.RolledBack, lastRuns(in)
		out.Instances = append(out.Instances, ij)
	}
	return out
}

// statusPrinter prints instances as a table, as plan trees, or as JSON or YAML. Across the
// prints of --watch it remembers what it printed: a table prints its header once and then
// only the rows that changed; trees are drawn again whole, as KUDO's plan status --wait does.
type statusPrinter struct {
	w      io.Writer
	output string
	// tree prints plan trees instead of table rows.
	tree bool
	// allNamespaces adds the NAMESPACE column.
	allNamespaces bool

	printed, header bool
	// rows are the table rows printed last, without their age, by namespace/name.
	rows map[string]string
	// widths are the table's column widths so far.
	widths []int
}

func (p *statusPrinter) print(list []v1alpha1.Instance, now time.Time) error {
	defer func() { p.printed = true }()
	if p.printed && (p.output == "json" || p.output == "yaml") {
		fmt.Fprintln(p.w) // --watch: a blank line between documents
	}
	switch p.output {
	case "json":
		enc := json.NewEncoder(p.w)
		enc.SetIndent("", "  ")
		return enc.Encode(toJSON(list))
	case "yaml":
		out, err := sigsyaml.Marshal(toJSON(list))
		if err != nil {
			return err
		}
		_, err = p.w.Write(out)
		return err
	}
	if len(list) == 0 {
		if !p.printed {
			fmt.Fprintln(p.w, "No instances found.")
		}
		return nil
	}
	if p.tree {
		for i := range list {
			if i > 0 || p.printed {
				fmt.Fprintln(p.w)
			}
			fmt.Fprint(p.w, planTree(&list[i]))
		}
		return nil
	}
	return p.table(list, now)
}

// table prints a row per instance, kubectl's way: columns padded by three spaces, the header
// once, then only rows whose content (not their age) changed. Columns keep the widths they
// had, so the rows --watch adds line up with the header.
func (p *statusPrinter) table(list []v1alpha1.Instance, now time.Time) error {
	var lines [][]string
	if !p.header {
		p.header = true
		head := []string{"NAME", "OPERATOR", "VERSION", "PLAN", "STATUS", "REVISION", "AGE"}
		if p.allNamespaces {
			head = append([]string{"NAMESPACE"}, head...)
		}
		lines = append(lines, head)
	}
	rows := make(map[string]string, len(list))
	for i := range list {
		in := &list[i]
		row := tableRow(in, p.allNamespaces)
		key := in.Namespace + "/" + in.Name
		rows[key] = strings.Join(row, "\t")
		if p.rows[key] == rows[key] {
			continue
		}
		lines = append(lines, append(row, age(in, now)))
	}
	p.rows = rows
	for _, l := range lines {
		for i, cell := range l {
			if i == len(p.widths) {
				p.widths = append(p.widths, 0)
			}
			p.widths[i] = max(p.widths[i], len(cell))
		}
	}
	var b strings.Builder
	for _, l := range lines {
		for i, cell := range l {
			if i == len(l)-1 {
				b.WriteString(cell + "\n")
				break
			}
			b.WriteString(cell + strings.Repeat(" ", p.widths[i]-len(cell)+3))
		}
	}
	_, err := io.WriteString(p.w, b.String())
	return err
}

// tableRow is an instance's row without its age: the current plan (running, or else the last)
// and the revision it applied, or the one it is deploying when none completed yet.
func tableRow(in *v1alpha1.Instance, namespace bool) []string {
	plan, status := "-", "-"
	if ps := currentPlan(in); ps != nil {
		plan, status = ps.Name, string(ps.Status)
	} else if lp := in.Status.LastPlan; lp != nil {
		plan, status = lp.Name, string(lp.Status) // a plan without a tree: the removal of an instance without a cleanup plan
	}
	if w := in.Status.Waiting; w != nil && w.Name == plan {
		status += " (" + waitingWord(w) + ")"
	}
	rev := in.Spec.Source.Revision
	if in.Status.Applied != nil {
		rev = in.Status.Applied.Revision
	}
	if len(rev) > 7 {
		rev = rev[:7]
	}
	if rev == "" {
		rev = "-"
	}
	rev += rolledBackNote(in)
	version := in.Spec.Operator.Version
	if version == "" {
		version = "-"
	}
	cells := []string{in.Name, in.Spec.Operator.Name, version, plan, status, rev}
	if namespace {
		cells = append([]string{in.Namespace}, cells...)
	}
	return cells
}

// age is how long the instance has existed, as kubectl prints it.
func age(in *v1alpha1.Instance, now time.Time) string {
	if in.CreationTimestamp.IsZero() {
		return "<unknown>"
	}
	return duration.HumanDuration(now.Sub(in.CreationTimestamp.Time))
}

// planTree renders an instance as KUDO's `kubectl kudo plan status` tree (docs/cli.md): plans
// sorted by name, plans that never ran as [NOT ACTIVE].
func planTree(in *v1alpha1.Instance) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Plan(s) for %q in namespace %q:\n", in.Name, in.Namespace)
	tree := treeprint.New()
	active := ""
	if ps := currentPlan(in); ps != nil {
		active = ps.Name
	}
	ov := in.Spec.Operator.Name + "-" + in.Spec.Operator.Version
	if in.Spec.Operator.AppVersion != "" {
		ov = in.Spec.Operator.Name + "-" + in.Spec.Operator.AppVersion + "-" + in.Spec.Operator.Version
	}
	head := fmt.Sprintf("%s (Operator-Version: %q Active-Plan: %q)", in.Name, ov, active)
	if rev := appliedRevision(in); rev != "" {
		head += fmt.Sprintf(" Revision: %q", rev)
	}
	if in.Spec.Suspend {
		head += " [SUSPENDED]"
	}
	head += rolledBackHead(in)
	root := tree.AddBranch(head)
	if w := in.Status.Waiting; w != nil {
		line := fmt.Sprintf("Waiting: plan %s of commit %s: %s", w.Name, v1alpha1.ShortRevision(w.Revision), w.Message)
		if w.Replaced != "" {
			line += fmt.Sprintf(" (replaces the waiting %s)", w.Replaced)
		}
		root.AddNode(line + ", since " + w.Since.UTC().Format("2006-01-02 15:04:05"))
	}
	plans := append([]v1alpha1.PlanStatus(nil), in.Status.Plans...)
	sort.Slice(plans, func(i, j int) bool { return plans[i].Name < plans[j].Name })
	for _, ps := range plans {
		notActive := ps.Status == v1alpha1.StatusNeverRun
		line := fmt.Sprintf("Plan %s (%s strategy) [%s]%s", ps.Name, ps.Strategy, statusWord(ps.Status, notActive), msg(ps.Message))
		if ps.LastUpdated != nil && !notActive {
			line += ", last updated " + ps.LastUpdated.UTC().Format("2006-01-02 15:04:05")
		}
		pb := root.AddBranch(line)
		for _, ph := range ps.Phases {
			phb := pb.AddBranch(fmt.Sprintf("Phase %s (%s strategy) [%s]%s", ph.Name, ph.Strategy, statusWord(ph.Status, notActive), msg(ph.Message)))
			for _, st := range ph.Steps {
				phb.AddNode(fmt.Sprintf("Step %s [%s]%s", st.Name, statusWord(st.Status, notActive), msg(st.Message)))
			}
		}
	}
	b.WriteString(tree.String())
	b.WriteString(lastRunsText(in))
	return b.String()
}

func appliedRevision(in *v1alpha1.Instance) string {
	if in.Status.Applied != nil {
		return in.Status.Applied.ShortRevision
	}
	return ""
}

func statusWord(s v1alpha1.ExecutionStatus, notActive bool) string {
	if notActive || s == "" {
		return "NOT ACTIVE"
	}
	return string(s)
}

func msg(m string) string {
	if m == "" {
		return ""
	}
	return " (" + m + ")"
}

// waitingWord says in a table cell what a plan waits for.
func waitingWord(w *v1alpha1.WaitingPlan) string {
	switch w.Reason {
	case v1alpha1.WaitApproval:
		return "awaiting approval"
	case v1alpha1.WaitWindow:
		if w.Until != nil {
			return "window " + w.Until.UTC().Format("01-02 15:04") + " UTC"
		}
		return "window"
	}
	return "dependencies"
}
