package planner

import "github.com/kudod-dev/kudod/manifests"

// DeployedChild is a KudoOperator task's child instance as the cluster has it.
type DeployedChild struct {
	// Package is the package the child was deployed from, looked up again in the parent's
	// repository by name and version; nil when the repository no longer has it.
	Package *manifests.Package
	// Digest is the package digest the child recorded when it was deployed.
	Digest string
	// Parameters are the child's explicit parameter values.
	Parameters map[string]string
}

// DecideChild decides which plan the child instance of a KudoOperator task runs (KUDO's KEP-29)
// when its parent's step writes it: new is what the parent's package asks for now; deployed is
// the child as it exists (nil: it does not exist yet).
//
// The child is judged like any instance (Decide), except when its old package cannot be read
// any more: it is gone from the repository, or it changed in place under the same version, so
// what the child was deployed from is lost. The change is then an upgrade to the new package
// (its upgrade plan, else update, else deploy), since nothing smaller can be proven.
func DecideChild(deployed *DeployedChild, new *State) Decision {
	if deployed == nil {
		return Decide(nil, new)
	}
	old := deployed.Package
	if old != nil && old.Digest != deployed.Digest && old.OperatorVersion == new.Package.OperatorVersion {
		old = nil
	}
	if old == nil {
		return finish(Decision{
			Namespace: new.Namespace, Instance: new.Name, New: new, Action: ActionUpgrade,
			Plan:    firstPlan(new.Package, manifests.PlanUpgrade, manifests.PlanUpdate, manifests.PlanDeploy),
			Reasons: []string{"package of the child changed"},
		}, new)
	}
	return Decide(&State{Namespace: new.Namespace, Name: new.Name, Package: old, Parameters: deployed.Parameters}, new)
}
