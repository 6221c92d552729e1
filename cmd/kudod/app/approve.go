package app

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

func newApproveCommand(s streams) *cobra.Command { return newVerdictCommand(s, true) }

func newRejectCommand(s streams) *cobra.Command { return newVerdictCommand(s, false) }

// newVerdictCommand is `kudod approve` or `kudod reject` (docs/operations.md, Approvals): an
// annotation naming the waiting plan's commit, the plan and who, the kubeconfig's user.
func newVerdictCommand(s streams, approve bool) *cobra.Command {
	var (
		kf   kubeFlags
		plan string
	)
	verb, key, done := "reject", v1alpha1.AnnotationRejected, "Rejected"
	short := "End an instance's waiting plan with FATAL_ERROR, \"rejected by <you>\"; nothing is applied"
	if approve {
		verb, key, done = "approve", v1alpha1.AnnotationApproved, "Approved"
		short = "Let an instance's plan that awaits approval start, for its commit only"
	}
	cmd := &cobra.Command{
		Use:   verb + " INSTANCE",
		Short: short,
		Long: short + `.

The plan is the one the instance waits with (kudod status shows it), or the one git just asked
for. The annotation ` + key + ` names its commit, the plan and you (the kubeconfig's user,
as the API server knows it): an approval holds for that commit only, a later commit needs its
own. --plan makes sure the plan is the one you mean. Exit status: 0 written, 2 no plan waits,
or another error.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, inst, err := kf.instance(cmd.Context(), args[0])
			if err != nil {
				return exitCode(2, err)
			}
			name, revision, why, err := waitingPlan(inst, plan)
			if err != nil {
				return exitCode(2, err)
			}
			a := v1alpha1.PlanApproval{Revision: revision, Plan: name, User: requester(cmd.Context(), c)}
			if err := annotate(cmd, c, ns, args[0], key, a); err != nil {
				return exitCode(2, err)
			}
			fmt.Fprintf(s.Out, "%s plan %s of %s/%s for commit %s as %s.\n", done, name, ns, args[0], v1alpha1.ShortRevision(revision), a.User)
			if approve && why != "" && why != "awaiting approval" {
				fmt.Fprintf(s.Out, "It still waits: %s.\n", why)
			}
			return nil
		},
	}
	kf.add(cmd.Flags(), true)
	cmd.ValidArgsFunction = completeInstances(&kf)
	cmd.Flags().StringVar(&plan, "plan", "", "the plan meant (an error if another one waits)")
	return cmd
}

// waitingPlan is the plan `kudod approve` and `kudod reject` are about: the one recorded as
// waiting, else the one git asked for that the daemon has not looked at yet. why is what it
// waits for, when recorded.
func waitingPlan(inst *v1alpha1.Instance, want string) (plan, revision, why string, err error) {
	key := inst.Namespace + "/" + inst.Name
	switch w, req := inst.Status.Waiting, inst.Spec.Plan; {
	case w != nil:
		plan, revision, why = w.Name, w.Revision, w.Message
	case req != nil && req.UID != inst.Status.HandledPlanRequest:
		plan, revision = req.Name, inst.Spec.Source.Revision
	default:
		last := "no plan ran yet"
		if lp := inst.Status.LastPlan; lp != nil {
			last = fmt.Sprintf("its last plan is %s %s", lp.Name, lp.Status)
		}
		return "", "", "", fmt.Errorf("no plan of %s waits (%s)", key, last)
	}
	if want != "" && want != plan {
		return "", "", "", fmt.Errorf("the plan of %s that waits is %s, not %s", key, plan, want)
	}
	if revision == "" {
		return "", "", "", fmt.Errorf("the waiting plan %s of %s has no commit", plan, key)
	}
	return plan, revision, why, nil
}
