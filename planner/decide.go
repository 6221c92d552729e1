package planner

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/kudod-dev/kudod/manifests"
)

// Decide compares an instance's old and new state and returns which plan runs, following
// docs/design.md, Plan selection (KUDO's admission rules):
//   - new instance → deploy;
//   - removed instance → cleanup (the plan when the package has one);
//   - operator version changed → upgrade, else update, else deploy; rejected when changed
//     parameters would trigger a plan other than deploy;
//   - parameters changed → the trigger of the changed parameters (parameters without a
//     trigger are ignored when another has one); none → update, else deploy; two different
//     triggers → rejected;
//   - an immutable parameter changed → rejected;
//   - only templates changed (same version, another digest) → update, else deploy;
//   - nothing → none.
func Decide(old, new *State) Decision {
	switch {
	case old == nil && new == nil:
		return Decision{Action: ActionNone}
	case old == nil:
		return decideNew(new)
	case new == nil:
		return decideRemoved(old)
	}
	if old.NeverCompleted {
		if sameDesired(old, new) {
			return Decision{Namespace: new.Namespace, Instance: new.Name, Old: old, New: new, Action: ActionNone, Reasons: []string{}}
		}
		d := decideNew(new)
		d.Old = old
		d.Reasons = append(d.Reasons, "its first deploy has not completed: deploy runs again")
		return d
	}
	d := Decision{Namespace: new.Namespace, Instance: new.Name, Old: old, New: new, Reasons: []string{}}
	op, np := old.Package, new.Package
	upgrade := op.Name != np.Name || op.OperatorVersion != np.OperatorVersion || op.AppVersion != np.AppVersion
	changed := changedParameters(old, new)
	changed = append(changed, changedSources(old, new)...)
	for _, c := range changed {
		d.Reasons = append(d.Reasons, c.reason())
	}

	if reason := immutableViolation(old, new, upgrade); reason != "" {
		return reject(d, reason)
	}
	for _, c := range changed {
		if par := np.Parameter(c.name); c.source != "" && par != nil && par.Immutable {
			return reject(d, fmt.Sprintf("parameter %s is immutable: %s", c.name, c.source))
		}
	}

	if upgrade {
		d.Reasons = append([]string{fmt.Sprintf("operator version %s → %s", versionLabel(op), versionLabel(np))}, d.Reasons...)
		if op.Name != np.Name {
			return reject(d, fmt.Sprintf("operator changed from %s to %s: an instance cannot change its operator; remove it and add a new one", op.Name, np.Name))
		}
		if len(changed) > 0 {
			plan, err := triggeredPlan(np, changed)
			if err != "" {
				return reject(d, err)
			}
			if plan != manifests.PlanDeploy {
				return reject(d, fmt.Sprintf("upgrading to %s while changing parameters that trigger plan %q is not allowed: change the parameters in a separate commit", np.OperatorVersion, plan))
			}
		}
		d.Action = ActionUpgrade
		d.Plan = firstPlan(np, manifests.PlanUpgrade, manifests.PlanUpdate, manifests.PlanDeploy)
		return finish(d, new)
	}

	templatesChanged := op.Digest != np.Digest
	if templatesChanged {
		d.Reasons = append(d.Reasons, fmt.Sprintf("package %s changed in place (%s → %s)", np.ID(), shortDigest(op.Digest), shortDigest(np.Digest)))
	}
	switch {
	case len(changed) > 0:
		plan, err := triggeredPlan(np, changed)
		if err != "" {
			return reject(d, err)
		}
		if templatesChanged && plan != manifests.PlanUpdate && plan != manifests.PlanDeploy {
			return reject(d, fmt.Sprintf("parameters trigger plan %q but the package also changed in place; commit the package change and the parameter change separately", plan))
		}
		d.Action = ActionUpdate
		d.Plan = plan
	case templatesChanged:
		d.Action = ActionUpdate
		d.Plan = firstPlan(np, manifests.PlanUpdate, manifests.PlanDeploy)
	default:
		d.Action = ActionNone
		return d
	}
	return finish(d, new)
}

// sameDesired reports whether two states ask for the same package and parameters.
func sameDesired(a, b *State) bool {
	if a.Package.Digest != b.Package.Digest || a.Package.OperatorVersion != b.Package.OperatorVersion || a.Package.AppVersion != b.Package.AppVersion {
		return false
	}
	if len(a.Parameters) != len(b.Parameters) || !sameSources(a.ParametersFrom, b.ParametersFrom) {
		return false
	}
	for k, v := range a.Parameters {
		if w, ok := b.Parameters[k]; !ok || !sameValue(a, b, k, v, w) {
			return false
		}
	}
	return true
}

func decideNew(new *State) Decision {
	d := Decision{Namespace: new.Namespace, Instance: new.Name, New: new, Action: ActionDeploy, Reasons: []string{fmt.Sprintf("new instance of %s %s", new.Package.Name, versionLabel(new.Package))}}
	if !new.Package.HasPlan(manifests.PlanDeploy) {
		return reject(d, fmt.Sprintf("%s has no deploy plan", new.Package.ID()))
	}
	d.Plan = manifests.PlanDeploy
	return finish(d, new)
}

func decideRemoved(old *State) Decision {
	d := Decision{Namespace: old.Namespace, Instance: old.Name, Old: old, Action: ActionCleanup, Reasons: []string{"instance removed from git"}}
	if old.Package != nil && old.Package.HasPlan(manifests.PlanCleanup) {
		d.Plan = manifests.PlanCleanup
		d.Reasons = append(d.Reasons, "cleanup plan runs, then its objects are deleted")
	} else {
		d.Reasons = append(d.Reasons, "no cleanup plan: its objects are deleted")
	}
	return d
}

func finish(d Decision, new *State) Decision {
	if new.Suspend {
		d.Reasons = append(d.Reasons, "instance is suspended: the plan runs when it is resumed")
	}
	return d
}

func reject(d Decision, reason string) Decision {
	d.Action = ActionRejected
	d.Plan = ""
	d.Error = reason
	return d
}

func firstPlan(p *manifests.Package, names ...string) string {
	for _, n := range names {
		if p.HasPlan(n) {
			return n
		}
	}
	return ""
}

// paramChange is one changed parameter.
type paramChange struct {
	name     string
	old, new string
	// added: no explicit old value; removed: no explicit new value.
	added, removed bool
	// sensitive values are never shown (docs/secrets.md).
	sensitive bool
	// source, when set, is the reason: a parametersFrom reference changed (name is the
	// parameter it names, "" when it takes every key of its object).
	source string
}

func (c paramChange) reason() string {
	switch {
	case c.source != "":
		return c.source
	case c.sensitive && c.removed:
		return fmt.Sprintf("parameter %s unset: the default applies", c.name)
	case c.sensitive && c.added:
		return fmt.Sprintf("parameter %s set: %s", c.name, manifests.SensitiveValue)
	case c.sensitive:
		return fmt.Sprintf("parameter %s: %s", c.name, manifests.SensitiveChanged)
	case c.added:
		return fmt.Sprintf("parameter %s set: %s", c.name, quoteValue(c.new))
	case c.removed:
		return fmt.Sprintf("parameter %s unset (was %s): the default applies", c.name, quoteValue(c.old))
	default:
		return fmt.Sprintf("parameter %s: %s → %s", c.name, quoteValue(c.old), quoteValue(c.new))
	}
}

// isSensitive reports whether a parameter's values are secrets on either side: a package
// marks it or its name looks like one, git had it encrypted or takes it from parametersFrom,
// or a side holds only its digest.
func isSensitive(old, new *State, name string) bool {
	for _, s := range []*State{old, new} {
		if s == nil {
			continue
		}
		if s.Instance != nil && s.Instance.IsSensitive(name) {
			return true
		}
		if s.Package.IsSensitive(name) || manifests.IsSensitiveDigest(s.Parameters[name]) {
			return true
		}
	}
	return false
}

// sameValue compares a parameter's values of two states; a sensitive value one side holds as
// its digest equals the value it digests.
func sameValue(old, new *State, name, a, b string) bool {
	if a == b {
		return true
	}
	if !manifests.IsSensitiveDigest(a) && !manifests.IsSensitiveDigest(b) {
		return false
	}
	return manifests.SameSensitive(new.Namespace, new.Name, name, a, b)
}

func quoteValue(v string) string {
	v = strings.TrimSuffix(v, "\n")
	if strings.ContainsAny(v, " \n\t") || v == "" {
		v = fmt.Sprintf("%q", v)
	}
	if len(v) > 60 {
		v = v[:57] + "..."
	}
	return v
}

// changedParameters lists explicitly given parameters that were added, changed or removed.
// As in KUDO, a parameter the old package did not have does not count as changed: it is new
// with the new version.
func changedParameters(old, new *State) []paramChange {
	var out []paramChange
	for name, nv := range new.Parameters {
		ov, had := old.Parameters[name]
		if had && sameValue(old, new, name, ov, nv) {
			continue
		}
		if old.Package.Parameter(name) == nil {
			continue
		}
		out = append(out, paramChange{name: name, old: ov, new: nv, added: !had, sensitive: isSensitive(old, new, name)})
	}
	for name, ov := range old.Parameters {
		if _, still := new.Parameters[name]; !still {
			out = append(out, paramChange{name: name, old: ov, removed: true, sensitive: isSensitive(old, new, name)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out
}

// triggeredPlan returns the plan changed parameters trigger, or why none can run.
func triggeredPlan(p *manifests.Package, changed []paramChange) (string, string) {
	triggers := map[string]bool{}
	for _, c := range changed {
		par := p.Parameter(c.name)
		if par == nil || par.Trigger == "" {
			continue
		}
		triggers[par.Trigger] = true
	}
	switch len(triggers) {
	case 0:
		if plan := firstPlan(p, manifests.PlanUpdate, manifests.PlanDeploy); plan != "" {
			return plan, ""
		}
		return "", fmt.Sprintf("%s has neither an update nor a deploy plan", p.ID())
	case 1:
		for t := range triggers {
			if !p.HasPlan(t) {
				return "", fmt.Sprintf("parameter trigger names plan %q, which %s does not have", t, p.ID())
			}
			return t, ""
		}
	}
	names := slices.Sorted(maps.Keys(triggers))
	return "", fmt.Sprintf("changed parameters trigger several plans at once (%s): change them in separate commits", strings.Join(names, ", "))
}

// immutableViolation returns why a change touches an immutable parameter, or "".
func immutableViolation(old, new *State, upgrade bool) string {
	np, op := new.Package, old.Package
	for _, par := range np.Parameters {
		if !par.Immutable {
			continue
		}
		oldPar := op.Parameter(par.Name)
		newVal, given := new.Parameters[par.Name]
		if upgrade && (oldPar == nil || !oldPar.Immutable) && !given {
			// KUDO (KEP-30): a parameter that becomes immutable, or an immutable parameter new in
			// this version, must be given explicitly so its value is pinned.
			if oldPar == nil {
				return fmt.Sprintf("parameter %s is new in %s and immutable: set it explicitly in spec.parameters", par.Name, np.OperatorVersion)
			}
			return fmt.Sprintf("parameter %s becomes immutable in %s: set it explicitly in spec.parameters", par.Name, np.OperatorVersion)
		}
		if oldPar == nil {
			continue
		}
		oldVal := effective(old, oldPar)
		if !given {
			newVal = effective(new, par)
		}
		if !sameValue(old, new, par.Name, oldVal, newVal) {
			if isSensitive(old, new, par.Name) {
				return fmt.Sprintf("parameter %s is immutable but was changed %s", par.Name, manifests.SensitiveChanged)
			}
			return fmt.Sprintf("parameter %s is immutable but was changed from %s to %s", par.Name, quoteValue(oldVal), quoteValue(newVal))
		}
	}
	return ""
}

func effective(s *State, par *manifests.Parameter) string {
	if v, ok := s.Parameters[par.Name]; ok {
		return v
	}
	if par.Default != nil {
		return par.Default.Text
	}
	return ""
}

func versionLabel(p *manifests.Package) string {
	if p.AppVersion != "" {
		return p.OperatorVersion + " (appVersion " + p.AppVersion + ")"
	}
	return p.OperatorVersion
}

func shortDigest(d string) string {
	d = strings.TrimPrefix(d, "sha256:")
	if len(d) > 12 {
		return d[:12]
	}
	return d
}
