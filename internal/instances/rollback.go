package instances

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/internal/desired"
	"github.com/kudod-dev/kudod/internal/forge"
	"github.com/kudod-dev/kudod/manifests"
	"github.com/kudod-dev/kudod/planner"
)

// actionRollback is the action of a plan request a rollback writes into the spec.
const actionRollback = "rollback"

// A rollback (docs/recovery.md, Rollback) writes the spec of an older revision, read from git
// with its package (sensitive values included, so none is ever stored), with a plan request
// for the plan KUDO's rules choose for that change (planner.DecideRollback). The commit it
// undoes is marked in status.rolledBack: polls plan against the rolled-back spec and do not
// apply that commit again until git changes the instance (internal/desired).

// errRefused is a rollback that cannot run, and why.
type errRefused struct{ why string }

func (e *errRefused) Error() string { return e.why }

func refuse(format string, args ...any) error { return &errRefused{why: fmt.Sprintf(format, args...)} }

// handleRollback acts on a `kudod rollback` request; written is true when it wrote the
// rolled-back spec.
func (r *Controller) handleRollback(ctx context.Context, inst *v1alpha1.Instance) (written bool, err error) {
	raw, ok := inst.Annotations[v1alpha1.AnnotationRollback]
	if !ok {
		return false, nil
	}
	var req v1alpha1.RollbackRequest
	if err := json.Unmarshal([]byte(raw), &req); err != nil || req.UID == "" || req.UID == inst.Status.HandledRollback {
		return false, nil
	}
	err = r.rollback(ctx, inst, req.To, req.User, req.UID)
	var refused *errRefused
	switch {
	case errors.As(err, &refused):
		r.recorder.Eventf(inst, nil, corev1.EventTypeWarning, "RollbackRefused", "Rollback", "rollback requested by %s refused: %s", userOr(req.User), refused.why)
	case err != nil:
		return false, err // tried again on the next reconcile
	}
	return err == nil, r.patchStatus(ctx, inst, func(s *v1alpha1.InstanceStatus) { s.HandledRollback = req.UID })
}

// rollbackOnFailure rolls back a failed update or upgrade plan from git when the instance asks
// for it (spec.onFailure: rollback).
func (r *Controller) rollbackOnFailure(ctx context.Context, inst *v1alpha1.Instance, ps planStart) {
	req := inst.Spec.Plan
	if inst.Spec.OnFailure != v1alpha1.FailureRollback || ps.trigger != v1alpha1.TriggerGit || req == nil || req.UID != ps.uid {
		return
	}
	if req.Action != string(planner.ActionUpdate) && req.Action != string(planner.ActionUpgrade) {
		return
	}
	err := r.rollback(ctx, inst, "", "", string(uuid.NewUUID()))
	var refused *errRefused
	switch {
	case errors.As(err, &refused):
		r.recorder.Eventf(inst, nil, corev1.EventTypeWarning, "RollbackRefused", "Rollback", "spec.onFailure: rollback of plan %s refused: %s", ps.plan, refused.why)
	case err != nil:
		r.log.Error(err, "automatic rollback", "instance", inst.Namespace+"/"+inst.Name)
		r.recorder.Eventf(inst, nil, corev1.EventTypeWarning, "RollbackFailed", "Rollback", "spec.onFailure: rollback of plan %s failed: %v", ps.plan, err)
	}
}

// rollback returns an instance to an older revision: to, or else the last one whose plan
// completed. It marks the commit it undoes, then writes the older spec with its plan request.
func (r *Controller) rollback(ctx context.Context, inst *v1alpha1.Instance, to, user, uid string) error {
	plan, err := r.planRollback(ctx, inst, to)
	if err != nil {
		return err
	}
	now := metav1.NewTime(r.now())
	mark := &v1alpha1.RollbackMark{Revision: plan.failed, To: plan.target, UID: uid, User: user, Time: now}
	if err := r.patchStatus(ctx, inst, func(s *v1alpha1.InstanceStatus) { s.RolledBack = mark }); err != nil {
		return err
	}
	by := "spec.onFailure"
	if user != "" {
		by = user
	}
	reasons := append([]string{fmt.Sprintf("rollback of %s to %s by %s", v1alpha1.ShortRevision(plan.failed), v1alpha1.ShortRevision(plan.target), by)}, plan.decision.Reasons...)
	req := &v1alpha1.PlanRequest{Name: plan.decision.Plan, UID: uid, Action: actionRollback, Reasons: reasons}
	want := desired.Instance(inst.Spec.Source.Repository, plan.target, plan.instance, req)
	if err := applier.ServerSideApply(ctx, r.client, want); err != nil {
		return fmt.Errorf("write the spec of %s: %w", v1alpha1.ShortRevision(plan.target), err)
	}
	r.recorder.Eventf(inst, nil, corev1.EventTypeNormal, "RollbackStarted", "Rollback", "rolling back %s to %s by %s: plan %s (%s)", v1alpha1.ShortRevision(plan.failed), v1alpha1.ShortRevision(plan.target), by, req.Name, strings.Join(plan.decision.Reasons, "; "))
	return nil
}

// rollbackPlan is what a rollback runs.
type rollbackPlan struct {
	failed, target string
	instance       *manifests.Instance
	decision       planner.Decision
}

// planRollback decides a rollback; a refusal is an *errRefused.
func (r *Controller) planRollback(ctx context.Context, inst *v1alpha1.Instance, to string) (*rollbackPlan, error) {
	if inst.DeletionTimestamp != nil {
		return nil, refuse("the instance is being removed")
	}
	if parent := inst.Labels[v1alpha1.LabelParent]; parent != "" {
		return nil, refuse("the instance is a child of %s, which decides its desired state: roll back the parent", parent)
	}
	target, why := rollbackTarget(inst, to)
	if why != "" {
		return nil, refuse("%s", why)
	}
	failed := inst.Spec.Source.Revision
	if m := inst.Status.RolledBack; m != nil && m.To == inst.Spec.Source.Revision {
		failed = m.Revision // rolled back already: the commit git asks for is still that one
	}
	current, err := r.store.InstancePackage(ctx, inst)
	if err != nil {
		return nil, refuse("the package of %s cannot be read: %v", v1alpha1.ShortRevision(inst.Spec.Source.Revision), err)
	}
	older, err := r.store.InstanceAt(ctx, inst.Spec.Source.Repository, target, inst.Namespace, inst.Name)
	if err != nil {
		return nil, refuse("%v", err)
	}
	d := planner.DecideRollback(
		&planner.State{Namespace: inst.Namespace, Name: inst.Name, Package: current, Parameters: inst.Spec.Parameters},
		planner.StateOf(older))
	if d.Action == planner.ActionRejected {
		return nil, refuse("%s", d.Error)
	}
	return &rollbackPlan{failed: failed, target: target, instance: older, decision: d}, nil
}

// rollbackTarget resolves the revision a rollback returns to, or says why there is none.
func rollbackTarget(inst *v1alpha1.Instance, to string) (string, string) {
	current := inst.Spec.Source.Revision
	if to == "" {
		a := inst.Status.Applied
		switch {
		case a == nil || a.Revision == "":
			return "", "no plan from git has completed: there is no revision to roll back to"
		case a.Revision == current:
			return "", fmt.Sprintf("the plan of %s completed: there is nothing to roll back (give --to REVISION to return to an older revision)", v1alpha1.ShortRevision(current))
		}
		return a.Revision, ""
	}
	to = strings.ToLower(strings.TrimSpace(to))
	if strings.Trim(to, "0123456789abcdef") != "" || len(to) < 4 {
		return "", fmt.Sprintf("%q is not a commit SHA (at least 4 hex digits)", to)
	}
	var target string
	if len(to) == 40 || len(to) == 64 {
		target = to
	} else {
		known := map[string]bool{}
		for _, e := range inst.Status.History {
			known[e.Revision] = true
		}
		if a := inst.Status.Applied; a != nil {
			known[a.Revision] = true
		}
		if m := inst.Status.RolledBack; m != nil {
			known[m.To] = true
		}
		var matches []string
		for rev := range known {
			if rev != "" && strings.HasPrefix(rev, to) {
				matches = append(matches, rev)
			}
		}
		switch len(matches) {
		case 0:
			return "", fmt.Sprintf("no revision %s in the instance's history: give the full commit SHA", to)
		case 1:
			target = matches[0]
		default:
			return "", fmt.Sprintf("%s names several revisions of the instance's history: give more digits", to)
		}
	}
	if target == current {
		return "", fmt.Sprintf("the instance is at %s already", v1alpha1.ShortRevision(current))
	}
	return target, ""
}

// RollbackRefusal says why `kudod rollback` cannot run, as far as the Instance alone tells
// (the daemon checks the rest with git); "" when it may.
func RollbackRefusal(inst *v1alpha1.Instance, to string) string {
	if inst.DeletionTimestamp != nil {
		return "the instance is being removed"
	}
	if parent := inst.Labels[v1alpha1.LabelParent]; parent != "" {
		return fmt.Sprintf("the instance is a child of %s, which decides its desired state: roll back the parent", parent)
	}
	_, why := rollbackTarget(inst, to)
	return why
}

// commitStatus is the commit status of an execution: on its commit, in the instance's context
// (a scheduled plan, or a retry of one, in its own). A rollback reports on the commit it rolls
// back, which ends "rolled back to <sha>".
func commitStatus(inst *v1alpha1.Instance, ps planStart, state forge.State, desc string) (forge.Status, bool) {
	sha := ps.revision
	c := forge.InstanceContext(inst.Namespace, inst.Name)
	if ps.trigger == v1alpha1.TriggerSchedule || (ps.trigger == v1alpha1.TriggerRetry && ps.schedule != "") {
		c += "/" + ps.plan
	}
	if ps.reportSHA != "" {
		to := v1alpha1.ShortRevision(inst.Spec.Source.Revision)
		sha = ps.reportSHA
		switch state {
		case forge.StatePending:
			desc = "rolling back to " + to + ": " + desc
		case forge.StateSuccess:
			state, desc = forge.StateFailure, "rolled back to "+to+" ("+desc+")"
		default:
			desc = "rollback to " + to + " failed: " + desc
		}
	}
	return forge.Status{Repository: inst.Spec.Source.Repository, SHA: sha, Context: c, State: state, Description: desc}, sha != ""
}

// gitStart is the start of the plan the spec asks for: from git, or a rollback's.
func gitStart(inst *v1alpha1.Instance, req *v1alpha1.PlanRequest) *planStart {
	ps := &planStart{plan: req.Name, uid: req.UID, trigger: v1alpha1.TriggerGit, revision: inst.Spec.Source.Revision, reasons: req.Reasons}
	if req.Action == actionRollback {
		ps.trigger = v1alpha1.TriggerRollback
		if m := inst.Status.RolledBack; m != nil && m.UID == req.UID {
			ps.user, ps.reportSHA = m.User, m.Revision
		}
	}
	return ps
}
