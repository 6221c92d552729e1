package instances

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/internal/forge"
	"github.com/kudod-dev/kudod/internal/parameters"
	"github.com/kudod-dev/kudod/manifests"
)

// execute runs one plan for an instance from start to end, keeping the Instance's status and
// the commit's status up to date. It reads top to bottom: package → render → record start →
// run steps → prune → record the end.
func (r *Controller) execute(ctx context.Context, ex *execution, inst *v1alpha1.Instance) {
	ps := ex.request
	log := logr.FromContextOrDiscard(ctx)
	repo := inst.Spec.Source.Repository
	report := func(state forge.State, desc string) {
		if st, ok := commitStatus(inst, ps, state, desc); ok {
			r.reporter.Report(st)
		}
	}
	started := r.now()

	pkg, err := r.store.InstancePackage(ctx, inst)
	if err != nil {
		log.Error(err, "package not available; retrying on the next reconcile")
		report(forge.StateError, "kudod could not read the package: "+err.Error())
		r.requeueAfter(ctx, inst, 30*time.Second)
		return
	}
	paramsErr := planParameters(inst, pkg, &ps)
	// The plan's identity (docs/security.md): refused outside the repository's lane; what it
	// reads besides its objects (parametersFrom) is read with its rights too.
	eng, engErr := r.engineFor(inst)
	// The values the plan renders with: sensitive ones from git and parametersFrom, never
	// written to the Instance (docs/secrets.md).
	values, err := r.resolver(eng).Resolve(ctx, inst, pkg)
	if values != nil && len(inst.Spec.ParametersFrom) > 0 {
		ps.sources, ps.sourcesRead = values.Sources, true
	}
	if err != nil && !parameters.IsError(err) {
		log.Error(err, "parameter values not available; retrying on the next reconcile")
		report(forge.StateError, "kudod could not read the parameter values: "+err.Error())
		r.requeueAfter(ctx, inst, 30*time.Second)
		return
	}
	params := inst.Spec.Parameters
	if err == nil {
		params = values.Params
	}
	run := &applier.Run{
		Instance:    inst,
		Package:     pkg,
		Plan:        ps.plan,
		Params:      withPlanParameters(params, ps.params),
		Children:    r.store.Finder(repo, inst.Spec.Source.Revision),
		Inventory:   applier.NewInventory(inst.Status.Inventory),
		StepTimeout: r.stepTimeout,
		Now:         r.now,
	}
	if inst.Spec.StepTimeout != nil {
		run.StepTimeout = inst.Spec.StepTimeout.Duration
	}
	ex.run = run
	plan, ok := pkg.Plans[ps.plan]
	var tree v1alpha1.PlanStatus
	if ok {
		tree = applier.NewPlanStatus(plan, ps.uid, ps.trigger, ps.revision, ps.reasons, started)
		if prev := inst.Status.Plan(ps.plan); ps.resume && prev != nil && prev.UID == ps.uid {
			tree = *prev.DeepCopy()
		}
		if retried, ok := retryTree(inst, plan, ps, started); ok {
			tree = retried
		}
	}
	run.Status = &tree

	// Render everything before the first write (docs/design.md, Running a plan).
	var rp *applier.RenderedPlan
	switch {
	case engErr != nil:
		err = engErr
	case err != nil: // a missing Secret or key, a value the parameter does not take
	case !ok:
		err = fmt.Errorf("%s has no plan %q", pkg.ID(), ps.plan)
	case paramsErr != nil:
		err = paramsErr
	default:
		rp, err = eng.Render(ctx, run)
	}
	if err != nil {
		err = r.masker.Error(err)
		tree = applier.NewPlanStatus(orEmptyPlan(plan, ps.plan), ps.uid, ps.trigger, ps.revision, ps.reasons, started)
		tree.Status, tree.Message = v1alpha1.StatusFatalError, err.Error()
		r.recordEnd(ctx, inst, ps, tree, nil, err)
		ex.ended = true
		r.observe(ps, outcomeFatal, started)
		report(forge.StateFailure, fmt.Sprintf("%s FATAL_ERROR: %v", ps.plan, err))
		return
	}
	for _, w := range rp.Warnings {
		r.recorder.Eventf(inst, nil, corev1.EventTypeWarning, "APIVersionUpgraded", "RunPlan", "%s", w)
	}

	report(forge.StatePending, fmt.Sprintf("%s plan IN_PROGRESS", ps.plan))

	// The first progress write also records that the plan started, and comes with the
	// PlanStarted event. The engine holds that write back for a moment: a plan done by then
	// is recorded once, at its end (one status write and one event instead of two each, which
	// matters with a thousand instances).
	recorded := false
	run.Persist = func(ctx context.Context, status v1alpha1.PlanStatus, inventory []v1alpha1.InventoryEntry) error {
		err := r.patchStatus(ctx, inst, func(s *v1alpha1.InstanceStatus) {
			if !recorded {
				r.recordSuperseded(s, ps)
				markStarted(s, inst, pkg, ps, r.now())
			}
			s.SetPlan(status)
			s.Inventory = inventory
			if s.LastPlan != nil && s.LastPlan.UID == status.UID {
				s.LastPlan.Status = status.Status
				s.LastPlan.Message = status.Summary()
			}
		})
		if err == nil && !recorded {
			recorded = true
			r.recorder.Eventf(inst, nil, corev1.EventTypeNormal, "PlanStarted", "RunPlan", "plan %s started (%s)", ps.plan, describeTrigger(ps))
		}
		return err
	}
	err = eng.Execute(ctx, run, rp)
	// Recording how the plan ended must not be cut short by what ended it (a newer plan, an abort).
	runCtx := ctx
	ctx = context.WithoutCancel(ctx)
	ex.ended = outcome(err) != ""
	var super *errSuperseded
	var aborted *errAborted
	switch {
	case err == nil:
		r.releasePlanScoped(ctx, inst, pkg, ps, run, rp)
		if perr := r.prune(ctx, eng, inst, pkg, params, run, rp); perr != nil {
			log.Error(perr, "prune failed; the objects stay in the inventory and are pruned after the next plan")
			r.recorder.Eventf(inst, nil, corev1.EventTypeWarning, "PruneFailed", "RunPlan", "prune failed: %v", perr)
		}
		r.recordEnd(ctx, inst, ps, *run.Status, run, nil)
		r.observe(ps, outcomeComplete, started)
		steps, total := run.Status.StepsComplete()
		report(forge.StateSuccess, fmt.Sprintf("%s plan COMPLETE (%d/%d steps, %s)", ps.plan, steps, total, r.now().Sub(started).Round(time.Second)))
		r.recorder.Eventf(inst, nil, corev1.EventTypeNormal, "PlanFinished", "RunPlan", "plan %s COMPLETE in %s (%s)", ps.plan, r.now().Sub(started).Round(time.Millisecond), describeTrigger(ps))
	case applier.IsFatal(err):
		r.recordEnd(ctx, inst, ps, *run.Status, run, err)
		r.observe(ps, outcomeFatal, started)
		r.metrics.StepFailed(ps.plan)
		report(forge.StateFailure, fmt.Sprintf("%s FATAL_ERROR in %s", ps.plan, failedAt(*run.Status, err)))
		r.recorder.Eventf(inst, nil, corev1.EventTypeWarning, "PlanFailed", "RunPlan", "plan %s FATAL_ERROR: %v", ps.plan, err)
		r.rollbackOnFailure(ctx, inst, ps)
	case errors.As(err, &super):
		status := run.Status.Interrupted(super.Error())
		r.recordEnd(ctx, inst, ps, status, run, err)
		r.observe(ps, outcomeSuperseded, started)
		report(forge.StateError, super.Error())
		r.recorder.Eventf(inst, nil, corev1.EventTypeNormal, "PlanSuperseded", "RunPlan", "plan %s %s", ps.plan, super.Error())
	case errors.As(err, &aborted):
		status := run.Status.Interrupted(aborted.Error())
		r.recordEnd(ctx, inst, ps, status, run, err)
		r.observe(ps, outcomeAborted, started)
		report(forge.StateFailure, fmt.Sprintf("%s FATAL_ERROR: %s", ps.plan, aborted.Error()))
		r.recorder.Eventf(inst, nil, corev1.EventTypeWarning, "PlanAborted", "RunPlan", "plan %s %s", ps.plan, aborted.Error())
	case errors.Is(err, errStopped):
		log.Info("execution stopped; the plan resumes later")
	default:
		log.Error(err, "plan interrupted; it resumes on the next reconcile")
		report(forge.StateError, fmt.Sprintf("kudod could not act: %v", err))
		r.requeueAfter(runCtx, inst, 10*time.Second)
	}
}

// observe counts a plan that ended.
func (r *Controller) observe(ps planStart, outcome string, started time.Time) {
	r.metrics.PlanEnded(ps.plan, ps.trigger, outcome, r.now().Sub(started))
}

func orEmptyPlan(p *manifests.Plan, name string) *manifests.Plan {
	if p != nil {
		return p
	}
	return &manifests.Plan{Name: name}
}

// markStarted records in a status that the plan runs: active plan, last plan, the request
// handled, the conditions, and every plan of the package in the tree. A previous plan still
// recorded as active (a restart that found a newer request) is recorded as superseded.
func markStarted(s *v1alpha1.InstanceStatus, inst *v1alpha1.Instance, pkg *manifests.Package, ps planStart, at time.Time) {
	now := metav1.NewTime(at)
	if s.ActivePlan != nil && s.ActivePlan.UID != ps.uid {
		s.EndPlan(s.ActivePlan.UID, v1alpha1.StatusFatalError, (&errSuperseded{by: describeStart(ps)}).Error(), now.Time)
	}
	start := now
	if ps.resume && s.ActivePlan != nil && s.ActivePlan.UID == ps.uid {
		start = s.ActivePlan.StartTime
	}
	s.ActivePlan = &v1alpha1.ActivePlan{Name: ps.plan, UID: ps.uid, Trigger: ps.trigger, Revision: ps.revision, Schedule: ps.schedule, StartTime: start}
	recordStart(s, ps)
	// Every plan of the package appears in the tree, as in KUDO's plan status.
	for _, name := range pkg.PlanNames() {
		if s.Plan(name) == nil {
			never := applier.NewPlanStatus(pkg.Plans[name], "", "", "", nil, now.Time)
			never.Status, never.LastUpdated = v1alpha1.StatusNeverRun, nil
			for i := range never.Phases {
				never.Phases[i].Status = v1alpha1.StatusNeverRun
				for j := range never.Phases[i].Steps {
					never.Phases[i].Steps[j].Status = v1alpha1.StatusNeverRun
				}
			}
			s.SetPlan(never)
		}
	}
	s.LastPlan = &v1alpha1.PlanSummary{Name: ps.plan, UID: ps.uid, Status: v1alpha1.StatusInProgress, Trigger: ps.trigger, Revision: ps.revision, StartTime: &start}
	markHandled(s, ps)
	recordSources(s, ps)
	s.SetCondition(metav1.Condition{Type: v1alpha1.ConditionReconciling, Status: metav1.ConditionTrue, Reason: "PlanInProgress", Message: fmt.Sprintf("plan %s is running", ps.plan), ObservedGeneration: inst.Generation})
	s.SetCondition(metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionUnknown, Reason: "PlanInProgress", Message: fmt.Sprintf("plan %s is running", ps.plan), ObservedGeneration: inst.Generation})
	apimeta.RemoveStatusCondition(&s.Conditions, v1alpha1.ConditionStalled)
}

func markHandled(s *v1alpha1.InstanceStatus, ps planStart) {
	switch ps.trigger {
	case v1alpha1.TriggerGit:
		if ps.uid != "" && ps.plan != manifests.PlanCleanup {
			s.HandledPlanRequest = ps.uid
		}
	case v1alpha1.TriggerManual:
		s.HandledTrigger = ps.uid
	case v1alpha1.TriggerRetry:
		s.HandledRetry = ps.uid
	case v1alpha1.TriggerRollback:
		s.HandledPlanRequest = ps.uid
	}
}

// recordEnd writes how a plan ended: its tree, the last plan, the applied state (a git plan
// that completed), the inventory and the conditions; the instance has no active plan after it.
func (r *Controller) recordEnd(ctx context.Context, inst *v1alpha1.Instance, ps planStart, tree v1alpha1.PlanStatus, run *applier.Run, planErr error) {
	now := metav1.NewTime(r.now())
	var entry v1alpha1.HistoryEntry
	err := r.patchStatus(ctx, inst, func(s *v1alpha1.InstanceStatus) {
		s.SetPlan(tree)
		start := now
		if s.ActivePlan != nil && s.ActivePlan.UID == ps.uid {
			start = s.ActivePlan.StartTime
			s.ActivePlan = nil
		}
		s.LastPlan = &v1alpha1.PlanSummary{Name: ps.plan, UID: ps.uid, Status: tree.Status, Message: tree.Summary(), Trigger: ps.trigger, Revision: ps.revision, StartTime: &start, FinishTime: &now}
		entry = historyEntry(ps, tree, planErr, start, now)
		s.History = appendHistory(s.History, entry, r.historyLimit)
		var super *errSuperseded
		if errors.As(planErr, &super) {
			s.LastPlan.SupersededBy = super.by
		}
		markHandled(s, ps)
		recordSources(s, ps)
		if run != nil {
			s.Inventory = run.Inventory.Entries()
		}
		s.ObservedGeneration = inst.Generation
		apimeta.RemoveStatusCondition(&s.Conditions, v1alpha1.ConditionReconciling)
		switch {
		case tree.Status == v1alpha1.StatusComplete:
			if appliesDesiredState(inst, ps) {
				s.Applied = appliedState(inst, now)
			}
			s.SetCondition(metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionTrue, Reason: "PlanComplete", Message: fmt.Sprintf("plan %s COMPLETE", ps.plan), ObservedGeneration: inst.Generation})
			apimeta.RemoveStatusCondition(&s.Conditions, v1alpha1.ConditionStalled)
		case errors.As(planErr, &super):
			s.SetCondition(metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionUnknown, Reason: "PlanSuperseded", Message: tree.Message, ObservedGeneration: inst.Generation})
		default:
			msg := fmt.Sprintf("plan %s FATAL_ERROR: %s", ps.plan, tree.Message)
			s.SetCondition(metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "PlanFailed", Message: msg, ObservedGeneration: inst.Generation})
			s.SetCondition(metav1.Condition{Type: v1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: "PlanFailed", Message: msg, ObservedGeneration: inst.Generation})
		}
	})
	r.notifyEnd(inst, entry)
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "recording the end of the plan")
		r.requeueAfter(ctx, inst, 5*time.Second)
	}
}

// appliedState records what a completed git plan applied; a sensitive value as its salted
// digest (the Instance holds no other form of it).
func appliedState(inst *v1alpha1.Instance, now metav1.Time) *v1alpha1.AppliedState {
	params := map[string]string{}
	for k, v := range inst.Spec.Parameters {
		if !manifests.IsSensitiveDigest(v) && manifests.IsSensitive(k) {
			v = manifests.SensitiveDigest(inst.Namespace, inst.Name, k, v)
		}
		params[k] = v
	}
	if len(params) == 0 {
		params = nil
	}
	return &v1alpha1.AppliedState{
		Revision: inst.Spec.Source.Revision, ShortRevision: v1alpha1.ShortRevision(inst.Spec.Source.Revision),
		PackagePath: inst.Spec.Source.PackagePath, OperatorVersion: inst.Spec.Operator.Version,
		AppVersion: inst.Spec.Operator.AppVersion, PackageDigest: inst.Spec.PackageDigest,
		Parameters: params, Time: &now,
	}
}

// prune deletes inventory objects no plan of the package renders any more (docs/design.md,
// Pruning), with the instance's own values (base: without a run's plan-scoped ones).
func (r *Controller) prune(ctx context.Context, eng *applier.Engine, inst *v1alpha1.Instance, pkg *manifests.Package, base map[string]string, run *applier.Run, rp *applier.RenderedPlan) error {
	if inst.Spec.Suspend {
		return nil
	}
	if len(run.Inventory.Without(rp.Inventory(inst.Namespace))) == 0 {
		return nil // everything in the inventory is what this plan just applied: nothing is stale
	}
	keep, err := eng.Rendered(ctx, inst, pkg, base, run.Children)
	if err != nil {
		return err
	}
	deleted, err := eng.Prune(ctx, inst, run.Inventory, keep)
	if err != nil {
		return err
	}
	if len(deleted) > 0 {
		run.Inventory.Remove(deleted...)
		r.recorder.Eventf(inst, nil, corev1.EventTypeNormal, "Pruned", "RunPlan", "pruned %d objects no plan renders any more", len(deleted))
	}
	return nil
}

// requeueAfter asks for another reconcile of the instance after d.
func (r *Controller) requeueAfter(ctx context.Context, inst *v1alpha1.Instance, d time.Duration) {
	obj := inst.DeepCopy()
	go func() {
		select {
		case <-ctx.Done():
		case <-time.After(d):
			r.requeue(obj)
		}
	}()
}

// failedAt names the step where a plan failed and why, for a commit status description.
func failedAt(ps v1alpha1.PlanStatus, err error) string {
	if st, ok := ps.FailedStep(); ok {
		return fmt.Sprintf("step %s: %s", st.Name, st.Message)
	}
	return err.Error()
}
