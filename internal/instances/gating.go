package instances

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/internal/forge"
	"github.com/kudod-dev/kudod/manifests"
	"github.com/kudod-dev/kudod/planner"
)

// This file connects the gates (gates.go) to the controller: it reads their input from the
// Instance, the cache and the clock, records a waiting plan in the status and on the commit
// (once per wait, not per reconcile), rejects, releases, and wakes dependents through an
// index of spec.dependsOn rather than by polling (docs/operations.md).

// GateDefaults are a repository's approval and windows, defaults for its instances
// (docs/configuration.md).
type GateDefaults struct {
	Approval *v1alpha1.Approval
	Windows  []v1alpha1.Window
}

// indexDependsOn indexes Instances by the namespace/name of each instance they depend on.
const indexDependsOn = "kudod.dev/depends-on"

// wakePadding is added to the wait for a window, so that the reconcile comes just after it
// opens, never just before.
const wakePadding = 100 * time.Millisecond

// outcomeRejected counts plans `kudod reject` (or a dependency cycle) ended before they
// started, in kudod_plan_runs_total (docs/metrics.md).
const outcomeRejected = "rejected"

// maxCycleWalk bounds the Instances a search for a dependency cycle visits.
const maxCycleWalk = 1000

// indexDependencies registers the spec.dependsOn index with the manager's cache.
func indexDependencies(ctx context.Context, mgr ctrl.Manager) error {
	return mgr.GetFieldIndexer().IndexField(ctx, &v1alpha1.Instance{}, indexDependsOn, func(o client.Object) []string {
		in, ok := o.(*v1alpha1.Instance)
		if !ok {
			return nil
		}
		return planner.RefKeys(in.Spec.DependsOn, in.Namespace)
	})
}

// related maps a change of an Instance to the Instances whose gates look at it: those that
// depend on it (their plans wait for it), and, once it is being removed, those it depends on
// (their removal waits for it to be gone).
func (r *Controller) related(ctx context.Context, o client.Object) []reconcile.Request {
	in, ok := o.(*v1alpha1.Instance)
	if !ok {
		return nil
	}
	var reqs []reconcile.Request
	var dependents v1alpha1.InstanceList
	if err := r.client.List(ctx, &dependents, client.MatchingFields{indexDependsOn: in.Namespace + "/" + in.Name}); err == nil {
		for _, d := range dependents.Items {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&d)})
		}
	}
	if in.DeletionTimestamp != nil {
		for _, ref := range in.Spec.DependsOn {
			ns := ref.Namespace
			if ns == "" {
				ns = in.Namespace
			}
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: ns, Name: ref.Name}})
		}
	}
	return reqs
}

// gated reports whether the gates apply to a plan: plans git triggers, of instances from git
// (a KudoOperator child's plans belong to its parent's, which was gated).
func gated(inst *v1alpha1.Instance, ps planStart) bool {
	_, child := inst.Labels[v1alpha1.LabelParent]
	return ps.trigger == v1alpha1.TriggerGit && !child
}

// gateInput reads what the gates of a plan look at.
func (r *Controller) gateInput(ctx context.Context, inst *v1alpha1.Instance, ps planStart, removal bool) (gateInput, error) {
	defaults := r.gateDefaults[inst.Spec.Source.Repository]
	in := gateInput{
		plan: ps, removal: removal, now: r.now(),
		needsApproval: planner.NeedsApproval(ps.plan, inst.Spec.Approval, defaults.Approval),
		approved:      parseApproval(inst, v1alpha1.AnnotationApproved),
		rejected:      parseApproval(inst, v1alpha1.AnnotationRejected),
		windows:       planner.EffectiveWindows(inst.Spec.Windows, defaults.Windows),
	}
	if mt, ok := manualTrigger(inst); ok && mt.IgnoreWindows && mt.Plan == ps.plan {
		in.ignoreWindows = userOr(mt.User)
	}
	if removal {
		var dependents v1alpha1.InstanceList
		if err := r.client.List(ctx, &dependents, client.MatchingFields{indexDependsOn: inst.Namespace + "/" + inst.Name}); err != nil {
			return in, fmt.Errorf("list the dependents of %s/%s: %w", inst.Namespace, inst.Name, err)
		}
		sort.Slice(dependents.Items, func(i, j int) bool {
			return client.ObjectKeyFromObject(&dependents.Items[i]).String() < client.ObjectKeyFromObject(&dependents.Items[j]).String()
		})
		for i := range dependents.Items {
			d := &dependents.Items[i]
			in.related = append(in.related, relatedInstance{key: d.Namespace + "/" + d.Name, busy: dependentState(d)})
		}
		return in, nil
	}
	for _, key := range planner.RefKeys(inst.Spec.DependsOn, inst.Namespace) {
		dep, err := r.instance(ctx, key)
		if err != nil {
			return in, err
		}
		in.related = append(in.related, relatedInstance{key: key, busy: dependencyState(dep)})
	}
	if len(inst.Spec.DependsOn) > 0 {
		cycle, err := r.findCycle(ctx, inst)
		if err != nil {
			return in, err
		}
		in.cycle = cycle
	}
	return in, nil
}

// instance reads an Instance from the cache by namespace/name; nil when there is none.
func (r *Controller) instance(ctx context.Context, key string) (*v1alpha1.Instance, error) {
	ns, name, _ := strings.Cut(key, "/")
	dep := &v1alpha1.Instance{}
	if err := r.client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, dep); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("read dependency %s: %w", key, err)
	}
	return dep, nil
}

// findCycle looks for a dependency cycle through inst among the Instances the daemon sees.
// Polls reject commits that make one (planner.CheckDependencies); this catches one made by
// two repositories at once.
func (r *Controller) findCycle(ctx context.Context, inst *v1alpha1.Instance) ([]string, error) {
	self := inst.Namespace + "/" + inst.Name
	g := planner.DependencyGraph{self: planner.RefKeys(inst.Spec.DependsOn, inst.Namespace)}
	queue := append([]string(nil), g[self]...)
	for len(queue) > 0 && len(g) < maxCycleWalk {
		key := queue[0]
		queue = queue[1:]
		if _, seen := g[key]; seen {
			continue
		}
		dep, err := r.instance(ctx, key)
		if err != nil {
			return nil, err
		}
		if dep == nil || dep.DeletionTimestamp != nil {
			continue
		}
		g[key] = planner.RefKeys(dep.Spec.DependsOn, dep.Namespace)
		queue = append(queue, g[key]...)
	}
	return g.Cycles()[self], nil
}

// evaluate says what the gates say about a plan, without acting on it.
func (r *Controller) evaluate(ctx context.Context, inst *v1alpha1.Instance, ps planStart, removal bool) (gateVerdict, error) {
	in, err := r.gateInput(ctx, inst, ps, removal)
	if err != nil {
		return gateVerdict{}, err
	}
	return decide(in), nil
}

// mayStart reports whether a wanted plan would start now: a newer commit supersedes the
// running plan only then, so a change that waits for approval or a window does not cut a
// running plan short.
func (r *Controller) mayStart(ctx context.Context, inst *v1alpha1.Instance, ps planStart) bool {
	if !gated(inst, ps) {
		return true
	}
	v, err := r.evaluate(ctx, inst, ps, false)
	return err == nil && v.action == gateRun
}

// startGated starts a git plan if its gates let it, and otherwise records that it waits or
// that it is rejected. It returns when to look again (0: an event will tell).
func (r *Controller) startGated(ctx context.Context, inst *v1alpha1.Instance, ps planStart) (time.Duration, error) {
	v, err := r.evaluate(ctx, inst, ps, false)
	if err != nil {
		return 0, err
	}
	switch v.action {
	case gateWait:
		return r.untilWindow(v), r.recordWaiting(ctx, inst, ps, v)
	case gateReject:
		return 0, r.recordRejected(ctx, inst, ps, v)
	}
	ps, err = r.release(ctx, inst, ps, v)
	if err != nil {
		return 0, err
	}
	r.start(inst, ps)
	return 0, nil
}

// gateRemoval applies the gates to the removal of an instance (its cleanup plan, or the
// deletion of its objects): true when it may go ahead now.
func (r *Controller) gateRemoval(ctx context.Context, inst *v1alpha1.Instance, ps planStart) (bool, time.Duration, error) {
	v, err := r.evaluate(ctx, inst, ps, true)
	if err != nil {
		return false, 0, err
	}
	switch v.action {
	case gateWait:
		return false, r.untilWindow(v), r.recordWaiting(ctx, inst, ps, v)
	case gateReject:
		return false, 0, r.recordRejected(ctx, inst, ps, v)
	}
	_, err = r.release(ctx, inst, ps, v)
	return err == nil, 0, err
}

// untilWindow is how long to wait for the window a verdict names.
func (r *Controller) untilWindow(v gateVerdict) time.Duration {
	if v.until.IsZero() {
		return 0
	}
	return max(v.until.Sub(r.now()), 0) + wakePadding
}

// waitConditionReason is the Reconciling condition's reason while a plan waits.
func waitConditionReason(reason v1alpha1.WaitReason) string {
	switch reason {
	case v1alpha1.WaitApproval:
		return "AwaitingApproval"
	case v1alpha1.WaitWindow:
		return "WaitingForWindow"
	}
	return "WaitingForDependencies"
}

// waitingMessage is what the plan tree, the last plan and the commit status say of a wait.
func waitingMessage(w *v1alpha1.WaitingPlan) string {
	if w.Replaced != "" {
		return fmt.Sprintf("%s (replaces the waiting %s)", w.Message, w.Replaced)
	}
	return w.Message
}

// recordWaiting records that a plan waits: in the status (the plan's tree PENDING with why,
// status.waiting), on the commit (pending) and, once per wait, as an event. Nothing is
// written while the wait stays the same.
func (r *Controller) recordWaiting(ctx context.Context, inst *v1alpha1.Instance, ps planStart, v gateVerdict) error {
	now := r.now()
	if v.windowErr != nil {
		r.log.Info("a maintenance window does not compute; the others apply", "instance", client.ObjectKeyFromObject(inst).String(), "error", v.windowErr.Error())
	}
	var until *metav1.Time
	if !v.until.IsZero() {
		t := metav1.NewTime(v.until)
		until = &t
	}
	key := client.ObjectKeyFromObject(inst)
	old := r.lastWait(inst)
	// A commit that changes only an instance's settings keeps its waiting plan but moves its
	// revision: the wait is recorded again, for the commit an approval must now name.
	if old != nil && old.UID == ps.uid && old.Revision == ps.revision && old.Reason == v.reason && old.Message == v.message && equalTime(old.Until, until) {
		return nil
	}
	w := &v1alpha1.WaitingPlan{Name: ps.plan, UID: ps.uid, Trigger: ps.trigger, Revision: ps.revision, Reason: v.reason, Message: v.message, Since: metav1.NewTime(now), Until: until}
	if old != nil {
		switch {
		case old.UID == ps.uid && old.Reason == v.reason:
			w.Since, w.Replaced = old.Since, old.Replaced
		case old.UID == ps.uid:
			r.metrics.PlanWaited(string(old.Reason), now.Sub(old.Since.Time))
			w.Replaced = old.Replaced
		default:
			r.replaced(inst, old, ps, now)
			w.Replaced = fmt.Sprintf("%s of %s", old.Name, v1alpha1.ShortRevision(old.Revision))
		}
	}
	msg := waitingMessage(w)
	pkg, err := r.store.InstancePackage(ctx, inst)
	if err != nil {
		pkg = nil // the wait is recorded without the plan's steps
	}
	err = r.patchStatus(ctx, inst, func(s *v1alpha1.InstanceStatus) {
		if s.ActivePlan != nil && s.ActivePlan.UID != ps.uid {
			// Recorded as running, not running here (a restart): a newer commit took over.
			s.EndPlan(s.ActivePlan.UID, v1alpha1.StatusFatalError, (&errSuperseded{by: describeStart(ps)}).Error(), now)
		}
		s.Waiting = w
		if pkg != nil && pkg.Plans[ps.plan] != nil {
			tree := applier.NewPlanStatus(pkg.Plans[ps.plan], ps.uid, ps.trigger, ps.revision, ps.reasons, now)
			tree.Status, tree.Message = v1alpha1.StatusPending, msg
			s.SetPlan(tree)
		}
		s.LastPlan = &v1alpha1.PlanSummary{Name: ps.plan, UID: ps.uid, Status: v1alpha1.StatusPending, Message: msg, Trigger: ps.trigger, Revision: ps.revision}
		s.SetCondition(metav1.Condition{Type: v1alpha1.ConditionReconciling, Status: metav1.ConditionTrue, Reason: waitConditionReason(v.reason), Message: fmt.Sprintf("plan %s %s", ps.plan, msg), ObservedGeneration: inst.Generation})
	})
	if err != nil {
		return err
	}
	r.waits.Store(key, w.DeepCopy())
	if old == nil || old.UID != ps.uid || old.Reason != v.reason {
		r.recorder.Eventf(inst, nil, corev1.EventTypeNormal, "PlanWaiting", "RunPlan", "plan %s (%s) waits: %s", ps.plan, describeTrigger(ps), msg)
	}
	r.report(inst, ps, forge.StatePending, fmt.Sprintf("%s PENDING: %s", ps.plan, msg))
	return nil
}

// lastWait is the wait the instance's status records: what this controller wrote last, when
// the cached Instance does not show it yet.
func (r *Controller) lastWait(inst *v1alpha1.Instance) *v1alpha1.WaitingPlan {
	old := inst.Status.Waiting
	if mem, ok := r.waits.Load(client.ObjectKeyFromObject(inst)); ok {
		if m := mem.(*v1alpha1.WaitingPlan); old == nil || old.UID == m.UID {
			return m
		}
	}
	return old
}

// replaced ends the wait of a plan a newer one replaces: it is reported as superseded on its
// commit, as a running plan would be.
func (r *Controller) replaced(inst *v1alpha1.Instance, old *v1alpha1.WaitingPlan, ps planStart, now time.Time) {
	r.metrics.PlanWaited(string(old.Reason), now.Sub(old.Since.Time))
	r.metrics.PlanEnded(old.Name, old.Trigger, outcomeSuperseded, 0)
	by := describeStart(ps)
	if old.Revision != "" && old.Revision != ps.revision {
		r.reporter.Report(forge.Status{Repository: inst.Spec.Source.Repository, SHA: old.Revision, Context: forge.InstanceContext(inst.Namespace, inst.Name), State: forge.StateError, Description: "superseded by " + by + " while it waited: " + old.Message})
	}
	r.recorder.Eventf(inst, nil, corev1.EventTypeNormal, "PlanSuperseded", "RunPlan", "plan %s of commit %s, which waited (%s), superseded by %s", old.Name, v1alpha1.ShortRevision(old.Revision), old.Message, by)
}

// recordRejected ends a plan that never started: `kudod reject`, or a dependency cycle. It
// is FATAL_ERROR with why; nothing was written to the cluster.
func (r *Controller) recordRejected(ctx context.Context, inst *v1alpha1.Instance, ps planStart, v gateVerdict) error {
	key := client.ObjectKeyFromObject(inst)
	if lp := inst.Status.LastPlan; lp != nil && lp.UID == ps.uid && lp.Status == v1alpha1.StatusFatalError && lp.Message == v.message {
		return nil // recorded already (a removal stays rejected until `kudod abort`)
	}
	now := r.now()
	old := r.lastWait(inst)
	if old != nil {
		r.metrics.PlanWaited(string(old.Reason), now.Sub(old.Since.Time))
		if old.UID != ps.uid {
			r.replaced(inst, old, ps, now)
		}
	}
	pkg, err := r.store.InstancePackage(ctx, inst)
	if err != nil {
		pkg = nil
	}
	finish := metav1.NewTime(now)
	err = r.patchStatus(ctx, inst, func(s *v1alpha1.InstanceStatus) {
		s.Waiting = nil
		if pkg != nil && pkg.Plans[ps.plan] != nil {
			tree := applier.NewPlanStatus(pkg.Plans[ps.plan], ps.uid, ps.trigger, ps.revision, ps.reasons, now)
			tree.Status, tree.Message = v1alpha1.StatusFatalError, v.message
			s.SetPlan(tree)
		}
		s.LastPlan = &v1alpha1.PlanSummary{Name: ps.plan, UID: ps.uid, Status: v1alpha1.StatusFatalError, Message: v.message, Trigger: ps.trigger, Revision: ps.revision, FinishTime: &finish}
		markHandled(s, ps)
		s.ObservedGeneration = inst.Generation
		msg := fmt.Sprintf("plan %s FATAL_ERROR: %s", ps.plan, v.message)
		s.SetCondition(metav1.Condition{Type: v1alpha1.ConditionReady, Status: metav1.ConditionFalse, Reason: "PlanRejected", Message: msg, ObservedGeneration: inst.Generation})
		s.SetCondition(metav1.Condition{Type: v1alpha1.ConditionStalled, Status: metav1.ConditionTrue, Reason: "PlanRejected", Message: msg, ObservedGeneration: inst.Generation})
		s.SetCondition(metav1.Condition{Type: v1alpha1.ConditionReconciling, Status: metav1.ConditionFalse, Reason: "PlanRejected", Message: msg, ObservedGeneration: inst.Generation})
	})
	if err != nil {
		return err
	}
	r.waits.Delete(key)
	r.mu.Lock()
	r.ended[key] = ps.uid // the cache may not show the rejection at the next reconcile
	r.mu.Unlock()
	r.metrics.PlanEnded(ps.plan, ps.trigger, outcomeRejected, 0)
	r.recorder.Eventf(inst, nil, corev1.EventTypeWarning, "PlanRejected", "RunPlan", "plan %s (%s) FATAL_ERROR: %s; nothing was applied", ps.plan, describeTrigger(ps), v.message)
	r.report(inst, ps, forge.StateFailure, fmt.Sprintf("%s FATAL_ERROR: %s", ps.plan, v.message))
	return nil
}

// release lets a plan start: a wait it had ends (counted in kudod_plan_wait_seconds), a
// `kudod trigger --ignore-windows` for it is used up, and who approved it or overrode its
// windows is recorded in its reasons and an event.
func (r *Controller) release(ctx context.Context, inst *v1alpha1.Instance, ps planStart, v gateVerdict) (planStart, error) {
	now := r.now()
	old := r.lastWait(inst)
	mt, hasTrigger := manualTrigger(inst)
	useTrigger := hasTrigger && mt.IgnoreWindows && mt.Plan == ps.plan
	if old != nil || useTrigger {
		if old != nil {
			r.metrics.PlanWaited(string(old.Reason), now.Sub(old.Since.Time))
			if old.UID != ps.uid {
				r.replaced(inst, old, ps, now)
			}
		}
		err := r.patchStatus(ctx, inst, func(s *v1alpha1.InstanceStatus) {
			s.Waiting = nil
			if tree := s.Plan(ps.plan); tree != nil && tree.UID == ps.uid && tree.Status == v1alpha1.StatusPending {
				tree.Message = ""
			}
			if s.LastPlan != nil && s.LastPlan.UID == ps.uid && s.LastPlan.Status == v1alpha1.StatusPending {
				s.LastPlan.Message = ""
			}
			if useTrigger {
				s.HandledTrigger = mt.UID
			}
		})
		if err != nil {
			return ps, err
		}
	}
	r.waits.Delete(client.ObjectKeyFromObject(inst))
	ps.reasons = append([]string(nil), ps.reasons...)
	if v.approvedBy != "" {
		ps.reasons = append(ps.reasons, fmt.Sprintf("approved by %s for commit %s", v.approvedBy, v1alpha1.ShortRevision(ps.revision)))
		r.recorder.Eventf(inst, nil, corev1.EventTypeNormal, "PlanApproved", "RunPlan", "plan %s (%s) approved by %s", ps.plan, describeTrigger(ps), v.approvedBy)
	}
	if v.windowsIgnoredBy != "" {
		ps.reasons = append(ps.reasons, "started outside its maintenance windows: kudod trigger --ignore-windows by "+v.windowsIgnoredBy)
		r.recorder.Eventf(inst, nil, corev1.EventTypeWarning, "WindowsIgnored", "RunPlan", "plan %s (%s) starts outside its maintenance windows: kudod trigger --ignore-windows by %s", ps.plan, describeTrigger(ps), v.windowsIgnoredBy)
	}
	return ps, nil
}

// report posts a commit status for a plan that has not started (waiting, rejected).
func (r *Controller) report(inst *v1alpha1.Instance, ps planStart, state forge.State, desc string) {
	if ps.revision == "" {
		return
	}
	r.reporter.Report(forge.Status{Repository: inst.Spec.Source.Repository, SHA: ps.revision, Context: forge.InstanceContext(inst.Namespace, inst.Name), State: state, Description: desc})
}

func equalTime(a, b *metav1.Time) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return a.Time.Equal(b.Time)
}

// cleanupStarted reports whether an instance's cleanup has started (so its gates were
// passed): its plan runs or ran, beyond the PENDING tree a wait records.
func cleanupStarted(inst *v1alpha1.Instance, uid string) bool {
	if a := inst.Status.ActivePlan; a != nil && a.UID == uid {
		return true
	}
	ps := inst.Status.Plan(manifests.PlanCleanup)
	return ps != nil && ps.UID == uid && ps.Status != v1alpha1.StatusPending
}

// scheduleHold says why a scheduled run that is due does not start (it is skipped, as CronJob
// skips a run it cannot start): its instance's windows that apply to scheduled plans
// (scheduled: true) are closed, or a plan from git waits or is about to start — a scheduled
// plan would run with the parameters of the new commit before that commit's own plan.
func (r *Controller) scheduleHold(inst *v1alpha1.Instance, now time.Time) string {
	if p := inst.Spec.Plan; p != nil && p.UID != inst.Status.HandledPlanRequest {
		if w := inst.Status.Waiting; w != nil && w.UID == p.UID {
			return fmt.Sprintf("the plan %s of commit %s waits: %s", w.Name, v1alpha1.ShortRevision(w.Revision), w.Message)
		}
		return fmt.Sprintf("the plan %s of commit %s is pending", p.Name, v1alpha1.ShortRevision(inst.Spec.Source.Revision))
	}
	windows := planner.EffectiveWindows(inst.Spec.Windows, r.gateDefaults[inst.Spec.Source.Repository].Windows)
	if len(windows) == 0 {
		return ""
	}
	if st, _ := planner.Windows(windows, true, now); !st.Open {
		return "outside its maintenance windows (" + st.Message + ")"
	}
	return ""
}
