package instances

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/internal/forge"
	"github.com/kudod-dev/kudod/internal/mask"
	"github.com/kudod-dev/kudod/internal/parameters"
	"github.com/kudod-dev/kudod/planner"
)

// checkSources compares what an idle instance's parametersFrom references hold now with what
// its last plan rendered with (status.parametersFrom, digests only) and, when a value changed,
// asks for the plan a git change of those parameters would run: spec.plan, with the reason
// "Secret db-creds changed" (docs/secrets.md). It reports whether it asked. Only instances with
// parametersFrom are looked at; each costs one GET per reference, of the API server itself.
func (r *Controller) checkSources(ctx context.Context, inst *v1alpha1.Instance) (bool, error) {
	if len(inst.Spec.ParametersFrom) == 0 || inst.Spec.Suspend || len(inst.Status.ParametersFrom) == 0 {
		return false, nil // no plan has rendered with them yet: the next plan reads them
	}
	if req := inst.Spec.Plan; req != nil && req.UID != inst.Status.HandledPlanRequest {
		return false, nil // a plan is asked for already; it reads the values as they are then
	}
	pkg, err := r.store.InstancePackage(ctx, inst)
	if err != nil {
		return false, nil // a plan would fail the same way; nothing to compare with
	}
	_, now, err := r.params.ReadSources(ctx, inst.Namespace, inst.Name, inst.Spec.ParametersFrom, pkg)
	if err != nil && now == nil {
		r.log.Info("parametersFrom cannot be read; comparing again later", "instance", client.ObjectKeyFromObject(inst).String(), "error", r.masker.Mask(err.Error()))
		return false, nil
	}
	changed, reasons := parameters.Changes(inst.Status.ParametersFrom, now)
	if len(reasons) == 0 {
		return false, nil
	}
	d := planner.DecideSources(inst.Namespace, inst.Name, pkg, changed, reasons, inst.Status.Applied == nil, inst.Spec.Suspend)
	if d.Action == planner.ActionRejected {
		// Recorded as handled, so it is reported once, not on every reconcile.
		r.recorder.Eventf(inst, nil, corev1.EventTypeWarning, "ChangeRejected", "Reconcile", "%s rejected: %s", joinReasons(reasons), d.Error)
		if rev := inst.Spec.Source.Revision; rev != "" {
			r.reporter.Report(forge.Status{Repository: inst.Spec.Source.Repository, SHA: rev, Context: forge.InstanceContext(inst.Namespace, inst.Name), State: forge.StateFailure, Description: "rejected: " + d.Error})
		}
		return true, r.patchStatus(ctx, inst, func(s *v1alpha1.InstanceStatus) { s.ParametersFrom = now })
	}
	req := &v1alpha1.PlanRequest{Name: d.Plan, UID: string(uuid.NewUUID()), Action: string(d.Action), Reasons: d.Reasons}
	patch, err := json.Marshal(map[string]any{"spec": map[string]any{"plan": req}})
	if err != nil {
		return false, err
	}
	r.log.Info("parametersFrom changed: asking for a plan", "instance", client.ObjectKeyFromObject(inst).String(), "plan", d.Plan, "reasons", joinReasons(d.Reasons))
	if err := r.client.Patch(ctx, inst, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return false, fmt.Errorf("ask for plan %s of %s/%s: %w", d.Plan, inst.Namespace, inst.Name, err)
	}
	return true, nil
}

func joinReasons(reasons []string) string { return strings.Join(reasons, "; ") }

// RecheckSources has every Instance of a repository that takes values from parametersFrom
// reconciled, which compares the values again (checkSources): the poll loop calls it after
// each poll, so a changed Secret is found within a poll interval.
func (r *Controller) RecheckSources(ctx context.Context, repository string) {
	if _, busy := r.rechecks.LoadOrStore(repository, true); busy {
		return // the previous poll's instances are still being queued
	}
	var list v1alpha1.InstanceList
	// Read-only: the cache's objects themselves, not a copy of each Instance on every poll.
	if err := r.client.List(ctx, &list, client.MatchingLabels{v1alpha1.LabelRepository: repository}, client.UnsafeDisableDeepCopy); err != nil {
		r.rechecks.Delete(repository)
		r.log.Error(err, "listing instances to compare their parametersFrom", "repository", repository)
		return
	}
	var due []client.Object
	for i := range list.Items {
		in := &list.Items[i]
		if len(in.Spec.ParametersFrom) > 0 && in.DeletionTimestamp == nil {
			due = append(due, in)
		}
	}
	if len(due) == 0 {
		r.rechecks.Delete(repository)
		return
	}
	go func() {
		defer r.rechecks.Delete(repository)
		for _, in := range due {
			select {
			case r.exited <- event.GenericEvent{Object: in}:
			case <-ctx.Done():
				return
			}
		}
	}()
}

// maskStatus masks every message of a status before it is written (docs/secrets.md): a
// template's fail message, an API server's error or a pod's output may quote a value.
func maskStatus(m *mask.Masker, s *v1alpha1.InstanceStatus) {
	if m == nil {
		return
	}
	for i := range s.Conditions {
		s.Conditions[i].Message = m.Mask(s.Conditions[i].Message)
	}
	if s.LastPlan != nil {
		s.LastPlan.Message = m.Mask(s.LastPlan.Message)
	}
	for i := range s.Plans {
		maskPlan(m, &s.Plans[i])
	}
	for i := range s.Schedules {
		s.Schedules[i].LastSkipReason = m.Mask(s.Schedules[i].LastSkipReason)
	}
}

func maskPlan(m *mask.Masker, p *v1alpha1.PlanStatus) {
	p.Message = m.Mask(p.Message)
	for i := range p.Reasons {
		p.Reasons[i] = m.Mask(p.Reasons[i])
	}
	for i := range p.Phases {
		ph := &p.Phases[i]
		ph.Message = m.Mask(ph.Message)
		for j := range ph.Steps {
			ph.Steps[j].Message = m.Mask(ph.Steps[j].Message)
		}
	}
}
