package app

import (
	"fmt"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/internal/instances"
	"github.com/kudod-dev/kudod/manifests"
)

// planParameterFlags reads `kudod trigger -p` flags: well formed and bounded here, checked
// against the package's params.yaml by the daemon before the run starts.
func planParameterFlags(flags []string) (map[string]string, error) {
	values, err := parseParameterFlags(flags)
	if err != nil {
		return nil, err
	}
	if len(values) > manifests.MaxPlanParameters {
		return nil, fmt.Errorf("%d parameters: at most %d may be set for one run", len(values), manifests.MaxPlanParameters)
	}
	for k, v := range values {
		if len(v) > manifests.MaxPlanParameterSize {
			return nil, fmt.Errorf("parameter %s: the value has %d bytes, more than %d", k, len(v), manifests.MaxPlanParameterSize)
		}
	}
	if len(values) == 0 {
		return nil, nil
	}
	return values, nil
}

func newRetryCommand(s streams) *cobra.Command {
	var (
		kf        kubeFlags
		fromStart bool
	)
	cmd := &cobra.Command{
		Use:   "retry INSTANCE",
		Short: "Run an instance's last failed plan again, at the same commit, from the step that failed",
		Long: `Run the instance's last plan again, which must have failed, at the commit it ran for: the
steps that completed stay done, and the plan continues from the step that failed (--from-start
runs every step). The retry is a new execution with the trigger "retry" (kudod history). It is
refused while a plan runs, when the last plan did not fail, and when a newer commit is pending
(docs/recovery.md, Retry).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, inst, err := kf.instance(cmd.Context(), args[0])
			if err != nil {
				return exitCode(2, err)
			}
			if why := instances.RetryRefusal(inst); why != "" {
				return exitCode(2, fmt.Errorf("cannot retry %s/%s: %s", ns, args[0], why))
			}
			req := v1alpha1.RetryRequest{UID: string(uuid.NewUUID()), User: requester(cmd.Context(), c), FromStart: fromStart}
			if err := annotate(cmd, c, ns, args[0], v1alpha1.AnnotationRetry, req); err != nil {
				return exitCode(2, err)
			}
			lp := inst.Status.LastPlan
			from := "from the step that failed"
			if fromStart {
				from = "from the start"
			}
			fmt.Fprintf(s.Out, "Retrying plan %s of %s/%s at %s, %s (retry %s).\n", lp.Name, ns, args[0], v1alpha1.ShortRevision(lp.Revision), from, req.UID)
			return nil
		},
	}
	kf.add(cmd.Flags(), true)
	cmd.ValidArgsFunction = completeInstances(&kf)
	cmd.Flags().BoolVar(&fromStart, "from-start", false, "run every step again, not only those that did not complete")
	return cmd
}

func newRollbackCommand(s streams) *cobra.Command {
	var (
		kf kubeFlags
		to string
	)
	cmd := &cobra.Command{
		Use:   "rollback INSTANCE",
		Short: "Return an instance to the last revision whose plan completed (or --to REVISION)",
		Long: `Return an instance to the parameters and operator version of an older revision, read from
git: by default the last one whose plan completed, or --to REVISION (a full SHA, or a prefix of
a revision in kudod history). The plan that runs is the one KUDO's rules choose for that change;
an operator version downgrade is refused unless the older package has an upgrade plan. The
commit rolled back is marked: the daemon does not apply it again until git changes the
instance, and kudod status shows the instance out of sync with git until then
(docs/recovery.md, Rollback).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, ns, inst, err := kf.instance(cmd.Context(), args[0])
			if err != nil {
				return exitCode(2, err)
			}
			if why := instances.RollbackRefusal(inst, to); why != "" {
				return exitCode(2, fmt.Errorf("cannot roll back %s/%s: %s", ns, args[0], why))
			}
			req := v1alpha1.RollbackRequest{UID: string(uuid.NewUUID()), User: requester(cmd.Context(), c), To: to}
			if err := annotate(cmd, c, ns, args[0], v1alpha1.AnnotationRollback, req); err != nil {
				return exitCode(2, err)
			}
			target := to
			if target == "" && inst.Status.Applied != nil {
				target = inst.Status.Applied.Revision
			}
			fmt.Fprintf(s.Out, "Asked the daemon to roll %s/%s back from %s to %s (rollback %s); kudod status %s -n %s --watch shows the plan.\n",
				ns, args[0], v1alpha1.ShortRevision(inst.Spec.Source.Revision), v1alpha1.ShortRevision(target), req.UID, args[0], ns)
			return nil
		},
	}
	kf.add(cmd.Flags(), true)
	cmd.ValidArgsFunction = completeInstances(&kf)
	cmd.Flags().StringVar(&to, "to", "", "the revision to return to (default: the last one whose plan completed)")
	return cmd
}
