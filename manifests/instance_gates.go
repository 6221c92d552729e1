package manifests

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/util/validation"
)

// checkGates checks, against the instance's package, the fields that say when its plans may
// start (docs/operations.md): dependsOn names instances by valid names, once each; every plan
// spec.approval.plans names is a plan of the package (otherwise a version change that runs
// deploy, because the package has no upgrade plan, would start unapproved); windows are in a
// named time zone. instance_policy.go has checked their form.
func (in *Instance) checkGates(p *Package) Findings {
	var fs Findings
	seen := map[string]int{}
	for i, ref := range in.DependsOn {
		field := fmt.Sprintf("spec.dependsOn[%d]", i)
		line := in.line(field)
		if ref.Name == "" {
			continue // reported by parseDependsOn
		}
		if errs := validation.IsDNS1123Label(ref.Name); len(errs) > 0 {
			fs = append(fs, errorf(in.File, line, "%s.name %q is not a valid instance name: %s", field, ref.Name, strings.Join(errs, "; ")))
		}
		if errs := validation.IsDNS1123Label(ref.Namespace); len(errs) > 0 {
			fs = append(fs, errorf(in.File, line, "%s.namespace %q is not a valid namespace name: %s", field, ref.Namespace, strings.Join(errs, "; ")))
		}
		key := ref.Namespace + "/" + ref.Name
		if first, dup := seen[key]; dup {
			fs = append(fs, errorf(in.File, line, "%s: %s is listed twice (also spec.dependsOn[%d])", field, key, first))
		}
		seen[key] = i
	}
	if in.Approval != nil {
		for _, plan := range in.Approval.Plans {
			if !p.HasPlan(plan) {
				fs = append(fs, errorf(in.File, in.line("spec.approval.plans"), "spec.approval.plans: %s %s has no plan %q (plans: %s); name the plan that runs, such as deploy when the package has no %s plan",
					p.Name, p.OperatorVersion, plan, strings.Join(p.PlanNames(), ", "), plan))
			}
		}
	}
	for i, w := range in.Windows {
		if strings.EqualFold(w.TimeZone, "Local") {
			field := fmt.Sprintf("spec.windows[%d]", i)
			fs = append(fs, errorf(in.File, in.line(field), "%s.timeZone: %q is the daemon's own zone; name an IANA time zone such as Europe/Berlin", field, w.TimeZone))
		}
	}
	return fs
}
