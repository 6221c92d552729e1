package planner

import (
	"fmt"

	"github.com/kudod-dev/kudod/manifests"
)

// DecideRollback decides what returns an instance from the state whose plan failed to an
// older one (docs/recovery.md, Rollback): the plan KUDO's rules choose for that change
// (Decide), so a rollback runs exactly what a commit reverting the change would. It is
// rejected when those rules reject the change, when nothing differs (a plan that failed for
// a reason outside git is retried, not rolled back), and for an operator version downgrade
// unless the older package has an upgrade plan: KUDO only ever moved forward, and deploy or
// update of an older version over the data of a newer one is no path a package declares; an
// upgrade plan is the author's path to that version from whatever runs.
func DecideRollback(failed, target *State) Decision {
	f, t := *failed, *target
	f.NeverCompleted = false
	f.Suspend, t.Suspend = false, false
	d := Decide(&f, &t)
	d.Old, d.New = failed, target
	switch d.Action {
	case ActionNone:
		return reject(d, "nothing to roll back: the older revision asks for the same package and parameters (a plan that failed for a reason outside git is retried with kudod retry)")
	case ActionUpgrade:
		if manifests.CompareVersions(t.Package.OperatorVersion, f.Package.OperatorVersion) < 0 && !t.Package.HasPlan(manifests.PlanUpgrade) {
			return reject(d, fmt.Sprintf("rolling back from %s %s to %s is a downgrade, and %s has no upgrade plan to take an instance to it: fix forward in git instead", f.Package.Name, f.Package.OperatorVersion, t.Package.OperatorVersion, t.Package.ID()))
		}
	}
	return d
}

// SameDesired reports whether two states ask for the same package and parameters: a commit
// rolled back is not applied again while git still asks for what it asked for.
func SameDesired(a, b *State) bool { return sameDesired(a, b) }
