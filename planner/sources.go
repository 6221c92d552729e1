package planner

import (
	"fmt"
	"sort"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
)

// changedSources lists the parametersFrom references a change adds or removes, as parameter
// changes: a reference that names a parameter counts as a change of it (its trigger applies);
// one that takes every key of its object counts as a change of parameters without a trigger.
// The values themselves are read from the cluster when the plan renders; a change of a value
// is found by the Instance controller (DecideSources).
func changedSources(old, new *State) []paramChange {
	var out []paramChange
	for _, src := range new.ParametersFrom {
		if !hasSource(old.ParametersFrom, src) {
			out = append(out, paramChange{name: src.Parameter, source: fmt.Sprintf("parametersFrom: %s added", describeSource(src)), sensitive: true})
		}
	}
	for _, src := range old.ParametersFrom {
		if !hasSource(new.ParametersFrom, src) {
			out = append(out, paramChange{name: src.Parameter, source: fmt.Sprintf("parametersFrom: %s removed", describeSource(src)), sensitive: true})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].source < out[j].source })
	return out
}

func hasSource(list []v1alpha1.ParameterSource, src v1alpha1.ParameterSource) bool {
	for _, s := range list {
		if s == src {
			return true
		}
	}
	return false
}

func sameSources(a, b []v1alpha1.ParameterSource) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range a {
		if !hasSource(b, s) {
			return false
		}
	}
	return true
}

// describeSource names a reference in messages: "Secret db-creds", "Secret db-creds (key
// password as DB_PASS)".
func describeSource(src v1alpha1.ParameterSource) string {
	switch {
	case src.Key == "":
		return src.Kind + " " + src.Name
	case src.Parameter != "" && src.Parameter != src.Key:
		return fmt.Sprintf("%s %s (key %s as %s)", src.Kind, src.Name, src.Key, src.Parameter)
	default:
		return fmt.Sprintf("%s %s (key %s)", src.Kind, src.Name, src.Key)
	}
}

// DecideSources decides which plan runs when values an instance takes from Secrets and
// ConfigMaps changed, exactly as a git change of those parameters would (Decide): their
// trigger, else update, else deploy; rejected when they trigger several plans or one of them
// is immutable. parameters are the changed parameters; reason says which objects changed
// ("Secret db-creds changed"). An instance whose first deploy never completed runs deploy.
func DecideSources(namespace, name string, pkg *manifests.Package, parameters []string, reasons []string, neverCompleted, suspend bool) Decision {
	d := Decision{Namespace: namespace, Instance: name, Action: ActionUpdate, Reasons: append([]string{}, reasons...)}
	st := &State{Namespace: namespace, Name: name, Package: pkg, Suspend: suspend}
	if neverCompleted {
		d.Action = ActionDeploy
		d.Plan = firstPlan(pkg, manifests.PlanDeploy)
		if d.Plan == "" {
			return reject(d, fmt.Sprintf("%s has no deploy plan", pkg.ID()))
		}
		return finish(d, st)
	}
	changed := make([]paramChange, 0, len(parameters))
	for _, p := range parameters {
		if par := pkg.Parameter(p); par != nil && par.Immutable {
			return reject(d, fmt.Sprintf("parameter %s is immutable but its value changed %s", p, manifests.SensitiveChanged))
		}
		changed = append(changed, paramChange{name: p, sensitive: true})
	}
	plan, err := triggeredPlan(pkg, changed)
	if err != "" {
		return reject(d, err)
	}
	d.Plan = plan
	return finish(d, st)
}
