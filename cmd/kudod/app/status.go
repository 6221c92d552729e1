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
	)
	cmd := &cobra.Command{
		Use:   "status [INSTANCE]",
		Short: "Show instances' plans as KUDO's plan tree (or the JSON of SPEC §8)",
		Args:  cobra.MaximumNArgs(1),
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
			for {
				list, err := listInstances(cmd.Context(), c, ns, name, all)
				if err != nil {
					return exitCode(2, err)
				}
				if err := printStatus(s.Out, list, output, time.Now()); err != nil {
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
				fmt.Fprintln(s.Out)
			}
		},
	}
	kf.add(cmd.Flags(), true)
	cmd.ValidArgsFunction = completeInstances(&kf)
	cmd.Flags().BoolVarP(&all, "all-namespaces", "A", false, "list instances of every namespace")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "print again every second until no plan runs")
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

// statusJSON is SPEC §8's `kudod status -o json`.
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
		out.Instances = append(out.Instances, ij)
	}
	return out
}

// printStatus writes instances as KUDO's plan tree, or as JSON/YAML.
func printStatus(w io.Writer, list []v1alpha1.Instance, output string, now time.Time) error {
	switch output {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(toJSON(list))
	case "yaml":
		out, err := sigsyaml.Marshal(toJSON(list))
		if err != nil {
			return err
		}
		_, err = w.Write(out)
		return err
	}
	if len(list) == 0 {
		fmt.Fprintln(w, "No instances found.")
		return nil
	}
	for i := range list {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprint(w, planTree(&list[i]))
	}
	return nil
}

// planTree renders KUDO's `kubectl kudo plan status` tree (reference §2.7).
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
	root := tree.AddBranch(head)
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
