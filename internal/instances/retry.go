package instances

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
)

// recovery is what an execution carries besides the plan it runs: where its plan-scoped
// values come from, what a retry repeats, and where a rollback reports.
type recovery struct {
	// scheduledTime is the time a scheduled run (or a retry of one) is for.
	scheduledTime time.Time
	// retryOf is the UID of the first execution a retry repeats (a retry of a retry repeats
	// the same one).
	retryOf string
	// continueUID is the UID of the failed tree a retry continues; "" runs every step.
	continueUID string
	// recorded are the plan-scoped values the history recorded for the execution a retry
	// repeats (masked ones cannot be used).
	recorded map[string]string
	// reportSHA is the commit a rollback reports to: the one it rolls back.
	reportSHA string
	// params are the execution's plan-scoped values; shownParams the same, masked.
	params, shownParams map[string]string
}

// resumeStart is the start of the plan recorded as running, after a restart.
func resumeStart(inst *v1alpha1.Instance, a *v1alpha1.ActivePlan) planStart {
	ps := planStart{plan: a.Name, uid: a.UID, trigger: a.Trigger, revision: a.Revision, schedule: a.Schedule, user: a.User, resume: true}
	ps.retryOf, ps.recorded = a.RetryOf, a.Parameters
	if a.ScheduledTime != nil {
		ps.scheduledTime = a.ScheduledTime.Time
	}
	if a.Trigger == v1alpha1.TriggerRollback || (a.Trigger == v1alpha1.TriggerRetry && originOf(inst, ps) == v1alpha1.TriggerRollback) {
		if m := inst.Status.RolledBack; m != nil {
			ps.reportSHA = m.Revision
		}
	}
	return ps
}

// recordStart adds to the active plan what a restart needs to resume it as it started; a
// plan from git means git moved on from a commit rolled back.
func recordStart(s *v1alpha1.InstanceStatus, ps planStart) {
	a := s.ActivePlan
	a.User, a.RetryOf, a.Parameters = ps.user, ps.retryOf, ps.shownParams
	if !ps.scheduledTime.IsZero() {
		t := metav1.NewTime(ps.scheduledTime)
		a.ScheduledTime = &t
	}
	if ps.trigger == v1alpha1.TriggerGit && ps.plan != manifests.PlanCleanup {
		s.RolledBack = nil
	}
}

// originOf is the trigger of the execution a retry repeats (the trigger itself for any
// other execution): git and rollback when it was the spec's plan request.
func originOf(inst *v1alpha1.Instance, ps planStart) v1alpha1.Trigger {
	if ps.trigger != v1alpha1.TriggerRetry {
		return ps.trigger
	}
	switch {
	case ps.schedule != "":
		return v1alpha1.TriggerSchedule
	case inst.Spec.Plan != nil && inst.Spec.Plan.UID == ps.retryOf:
		if inst.Spec.Plan.Action == actionRollback {
			return v1alpha1.TriggerRollback
		}
		return v1alpha1.TriggerGit
	}
	return v1alpha1.TriggerManual
}

// appliesDesiredState reports whether a completed execution applied the spec's desired state,
// which status.applied then records: a plan from git, a rollback, or a retry of either.
func appliesDesiredState(inst *v1alpha1.Instance, ps planStart) bool {
	switch originOf(inst, ps) {
	case v1alpha1.TriggerGit, v1alpha1.TriggerRollback:
		return ps.plan != manifests.PlanCleanup
	}
	return false
}

// recoveryUser names who asked for a retry or rollback: spec.onFailure rolls back with no user.
func recoveryUser(ps planStart) string {
	if ps.trigger == v1alpha1.TriggerRollback && ps.user == "" {
		return "spec.onFailure"
	}
	return userOr(ps.user)
}

func describeRecovery(ps planStart) string {
	if ps.trigger == v1alpha1.TriggerRollback {
		return "rollback"
	}
	return "retry of " + ps.plan
}

// wantedRetry returns the run `kudod retry` asks for, or records why it is refused.
func (r *Controller) wantedRetry(ctx context.Context, inst *v1alpha1.Instance) (*planStart, error) {
	raw, ok := inst.Annotations[v1alpha1.AnnotationRetry]
	if !ok {
		return nil, nil
	}
	var req v1alpha1.RetryRequest
	if err := json.Unmarshal([]byte(raw), &req); err != nil || req.UID == "" || req.UID == inst.Status.HandledRetry {
		return nil, nil
	}
	ps, refused := retryStart(inst, req, r.isRunning(inst))
	if refused != "" {
		r.recorder.Eventf(inst, nil, corev1.EventTypeWarning, "RetryRefused", "RunPlan", "retry requested by %s refused: %s", userOr(req.User), refused)
		return nil, r.patchStatus(ctx, inst, func(s *v1alpha1.InstanceStatus) { s.HandledRetry = req.UID })
	}
	return ps, nil
}

// RetryRefusal says why `kudod retry` cannot run now, "" when it can; the CLI asks it before
// annotating, the daemon again when it acts.
func RetryRefusal(inst *v1alpha1.Instance) string {
	_, why := retryStart(inst, v1alpha1.RetryRequest{UID: "check"}, inst.Status.ActivePlan != nil)
	return why
}

// retryStart decides what a retry runs: the last plan, which must have failed, at its commit,
// continuing its tree unless FromStart; or why it cannot.
func retryStart(inst *v1alpha1.Instance, req v1alpha1.RetryRequest, running bool) (*planStart, string) {
	lp := inst.Status.LastPlan
	switch {
	case inst.DeletionTimestamp != nil:
		return nil, "the instance is being removed"
	case running:
		return nil, "a plan is running"
	case lp == nil:
		return nil, "no plan has run yet"
	case lp.Status != v1alpha1.StatusFatalError:
		return nil, fmt.Sprintf("the last plan, %s, did not fail (%s): there is nothing to retry", lp.Name, lp.Status)
	case lp.Name == manifests.PlanCleanup:
		return nil, "the cleanup plan runs only when an instance is removed (kudod abort deletes it anyway)"
	case inst.Spec.Plan != nil && inst.Spec.Plan.UID != inst.Status.HandledPlanRequest:
		return nil, fmt.Sprintf("commit %s is pending: its plan runs next", v1alpha1.ShortRevision(inst.Spec.Source.Revision))
	case inst.Spec.Suspend:
		return nil, "the instance is suspended"
	}
	ps := &planStart{plan: lp.Name, uid: req.UID, trigger: v1alpha1.TriggerRetry, revision: lp.Revision, user: req.User}
	ps.retryOf = lp.UID
	if e := lastEntry(&inst.Status, lp.UID); e != nil {
		if e.RetryOf != "" {
			ps.retryOf = e.RetryOf
		}
		ps.schedule, ps.recorded = e.Schedule, e.Parameters
		if e.ScheduledTime != nil {
			ps.scheduledTime = e.ScheduledTime.Time
		}
	}
	if lp.Trigger == v1alpha1.TriggerRollback || originOf(inst, *ps) == v1alpha1.TriggerRollback {
		if m := inst.Status.RolledBack; m != nil {
			ps.reportSHA = m.Revision
		}
	}
	from := "from the step that failed"
	if tree := inst.Status.Plan(lp.Name); !req.FromStart && tree != nil && tree.UID == lp.UID {
		ps.continueUID = lp.UID
		if st, ok := tree.FailedStep(); ok {
			from = "from step " + st.Name
		}
	} else {
		from = "from the start"
	}
	ps.reasons = []string{fmt.Sprintf("retry of plan %s (%s) by %s, %s", lp.Name, v1alpha1.ShortRevision(lp.Revision), userOr(req.User), from)}
	return ps, ""
}

// retryTree is the tree a retry starts from: the failed one, with every step that did not
// complete PENDING again, so the engine skips the steps that completed (docs/recovery.md,
// Retry). ok is false when the retry runs every step (--from-start, or the tree does not fit
// the plan any more).
func retryTree(inst *v1alpha1.Instance, plan *manifests.Plan, ps planStart, now time.Time) (v1alpha1.PlanStatus, bool) {
	if ps.trigger != v1alpha1.TriggerRetry || ps.resume || ps.continueUID == "" || plan == nil {
		return v1alpha1.PlanStatus{}, false
	}
	prev := inst.Status.Plan(ps.plan)
	if prev == nil || prev.UID != ps.continueUID || !sameShape(*prev, plan) {
		return v1alpha1.PlanStatus{}, false
	}
	t := *prev.DeepCopy()
	at := metav1.NewTime(now)
	t.UID, t.Trigger, t.Revision, t.Reasons = ps.uid, ps.trigger, ps.revision, ps.reasons
	t.Status, t.Message, t.LastUpdated = v1alpha1.StatusInProgress, "", &at
	for i := range t.Phases {
		ph := &t.Phases[i]
		if ph.Status != v1alpha1.StatusComplete {
			ph.Status, ph.Message = v1alpha1.StatusPending, ""
		}
		for j := range ph.Steps {
			if st := &ph.Steps[j]; st.Status != v1alpha1.StatusComplete {
				st.Status, st.Message, st.LastUpdated = v1alpha1.StatusPending, "", nil
			}
		}
	}
	return t, true
}

// sameShape reports whether a tree has the phases and steps of a plan.
func sameShape(t v1alpha1.PlanStatus, plan *manifests.Plan) bool {
	if len(t.Phases) != len(plan.Phases) {
		return false
	}
	for i, ph := range plan.Phases {
		if t.Phases[i].Name != ph.Name || len(t.Phases[i].Steps) != len(ph.Steps) {
			return false
		}
		for j, st := range ph.Steps {
			if t.Phases[i].Steps[j].Name != st.Name {
				return false
			}
		}
	}
	return true
}
