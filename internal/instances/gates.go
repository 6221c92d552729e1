package instances

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
	"github.com/kudod-dev/kudod/planner"
)

// Gates decide whether a plan git asks for may start now (docs/operations.md): a rejection
// ends it; then it waits for an approval, for its dependencies (for a removal: for the
// instances that depend on it to be removed first) and for a maintenance window, in that
// order. decide is pure: everything it looks at is in gateInput, which the controller reads
// from the Instance, the cache of Instances and the clock (gating.go).

// gateAction is what the gates say.
type gateAction int

const (
	gateRun gateAction = iota
	gateWait
	gateReject
)

// gateInput is everything the gates of one plan look at.
type gateInput struct {
	// plan asks to start: git's plan request, or the cleanup of a removed instance.
	plan planStart
	// removal: the plan is the cleanup of a removed instance; related are then the instances
	// that depend on it, which go first.
	removal bool
	// needsApproval: the plan is among the instance's (or its repository's) approval plans.
	needsApproval bool
	// approved and rejected are the kudod.dev/approved and kudod.dev/rejected annotations.
	approved, rejected *v1alpha1.PlanApproval
	// ignoreWindows names who asked to start the plan outside its windows ("": nobody).
	ignoreWindows string
	// windows are the windows that apply (planner.EffectiveWindows).
	windows []v1alpha1.Window
	// related are the dependencies (or, for a removal, the dependents) as they are now.
	related []relatedInstance
	// cycle is a dependency cycle through the instance ([a, b, a]), found among the Instances
	// the daemon sees; nil when there is none.
	cycle []string
	now   time.Time
}

// relatedInstance is what the gates need of a dependency or dependent: "" busy when it does
// not hold the plan back, else what it is doing ("deploy IN_PROGRESS", "not found").
type relatedInstance struct {
	key  string
	busy string
}

// gateVerdict is what the gates say about a plan.
type gateVerdict struct {
	action gateAction
	// reason and message say what the plan waits for, or why it is rejected.
	reason  v1alpha1.WaitReason
	message string
	// until is when a window lets the plan start (zero: no time is known).
	until time.Time
	// approvedBy and windowsIgnoredBy name who let the plan start, for events and reasons.
	approvedBy, windowsIgnoredBy string
	// windowErr is a window that does not compute (reported, the others still apply).
	windowErr error
}

// decide applies the gates in order: a rejection, a dependency cycle, approval,
// dependencies, windows.
func decide(in gateInput) gateVerdict {
	ps := in.plan
	if in.rejected != nil && in.rejected.Matches(ps.revision, ps.plan) {
		return gateVerdict{action: gateReject, message: "rejected by " + userOr(in.rejected.User)}
	}
	if len(in.cycle) > 0 {
		return gateVerdict{action: gateReject, message: "dependency cycle: " + strings.Join(in.cycle, " → ")}
	}
	var v gateVerdict
	if in.needsApproval {
		if in.approved == nil || !in.approved.Matches(ps.revision, ps.plan) {
			return gateVerdict{action: gateWait, reason: v1alpha1.WaitApproval, message: "awaiting approval"}
		}
		v.approvedBy = userOr(in.approved.User)
	}
	var busy []string
	for _, r := range in.related {
		if r.busy != "" {
			busy = append(busy, fmt.Sprintf("%s (%s)", r.key, r.busy))
		}
	}
	if len(busy) > 0 {
		msg := "waiting for " + strings.Join(busy, ", ")
		switch {
		case in.removal && len(busy) == 1:
			msg = "waiting for the removal of " + busy[0] + ": it depends on this instance"
		case in.removal:
			msg = "waiting for the removal of " + strings.Join(busy, ", ") + ": they depend on this instance"
		}
		return gateVerdict{action: gateWait, reason: v1alpha1.WaitDependency, message: msg}
	}
	if len(in.windows) > 0 {
		st, err := planner.Windows(in.windows, false, in.now)
		v.windowErr = err
		if !st.Open {
			if in.ignoreWindows == "" {
				return gateVerdict{action: gateWait, reason: v1alpha1.WaitWindow, message: st.Message, until: st.Next, windowErr: err}
			}
			v.windowsIgnoredBy = in.ignoreWindows
		}
	}
	v.action = gateRun
	return v
}

// dependencyState says what holds a plan of a dependent back about its dependency dep (nil:
// not found): "" when dep's last plan is COMPLETE and it has no plan running or pending
// (docs/operations.md, Ordering).
func dependencyState(dep *v1alpha1.Instance) string {
	switch {
	case dep == nil:
		return "not found"
	case dep.DeletionTimestamp != nil:
		return "being removed"
	case dep.Status.ActivePlan != nil:
		return dep.Status.ActivePlan.Name + " IN_PROGRESS"
	case dep.Status.Waiting != nil && dep.Status.Waiting.Reason == v1alpha1.WaitDependency:
		return dep.Status.Waiting.Name + " PENDING: waiting for its dependencies"
	case dep.Status.Waiting != nil:
		return dep.Status.Waiting.Name + " PENDING: " + dep.Status.Waiting.Message
	case dep.Spec.Plan != nil && dep.Spec.Plan.UID != dep.Status.HandledPlanRequest:
		return dep.Spec.Plan.Name + " PENDING"
	case manualTriggerPending(dep):
		return "manual plan PENDING"
	case dep.Status.LastPlan == nil || dep.Status.Applied == nil:
		return "not deployed yet"
	case dep.Status.LastPlan.Status != v1alpha1.StatusComplete:
		return dep.Status.LastPlan.Name + " " + string(dep.Status.LastPlan.Status)
	}
	return ""
}

// dependentState says what holds the removal of an instance back about one of its
// dependents (nil: gone): it must be gone first.
func dependentState(dep *v1alpha1.Instance) string {
	switch {
	case dep == nil:
		return ""
	case dep.DeletionTimestamp != nil:
		return "being removed"
	}
	return "still declared"
}

func manualTriggerPending(inst *v1alpha1.Instance) bool {
	mt, ok := manualTrigger(inst)
	return ok && mt.Plan != manifests.PlanCleanup
}

// manualTrigger returns the instance's unhandled manual trigger.
func manualTrigger(inst *v1alpha1.Instance) (v1alpha1.ManualTrigger, bool) {
	raw, ok := inst.Annotations[v1alpha1.AnnotationTrigger]
	if !ok {
		return v1alpha1.ManualTrigger{}, false
	}
	var mt v1alpha1.ManualTrigger
	if err := json.Unmarshal([]byte(raw), &mt); err != nil || mt.UID == "" || mt.UID == inst.Status.HandledTrigger {
		return v1alpha1.ManualTrigger{}, false
	}
	return mt, true
}

// parseApproval reads a kudod.dev/approved or kudod.dev/rejected annotation: JSON
// PlanApproval, or a bare commit SHA (kubectl annotate; docs/operations.md, Approvals). nil
// when absent or unreadable.
func parseApproval(inst *v1alpha1.Instance, key string) *v1alpha1.PlanApproval {
	raw := strings.TrimSpace(inst.Annotations[key])
	if raw == "" {
		return nil
	}
	a := &v1alpha1.PlanApproval{}
	if strings.HasPrefix(raw, "{") {
		if err := json.Unmarshal([]byte(raw), a); err != nil {
			return nil
		}
	} else {
		a.Revision = raw
	}
	a.Revision = strings.ToLower(a.Revision)
	if len(a.Revision) < minRevisionPrefix {
		return nil
	}
	return a
}

// minRevisionPrefix is the shortest commit prefix an approval may name, as git's short SHAs.
const minRevisionPrefix = 7
