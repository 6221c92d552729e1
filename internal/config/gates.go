package config

import (
	"strings"
	"time"

	"gopkg.in/yaml.v3"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/planner"
)

// A repository's approval and windows are defaults for its instances (docs/operations.md):
// an instance's spec.approval replaces the repository's, its allow windows replace the
// repository's, and deny windows of both hold.

// approval reads repositories[].approval: {plans: [upgrade, ...]}. Plan names are not checked
// against packages: a package without the plan is simply not held by it.
func (d *decoder) approval(n *yaml.Node, field string) *v1alpha1.Approval {
	a := &v1alpha1.Approval{}
	d.fields(n, field, fieldSet{
		"plans": func(v *yaml.Node, f string) {
			a.Plans = d.stringList(v, f)
			for i, p := range a.Plans {
				if p == "" {
					d.errorf(deref(v).Content[i], f, "plan names must not be empty")
				}
			}
		},
	})
	return a
}

// windows reads repositories[].windows, in the instance file's syntax.
func (d *decoder) windows(n *yaml.Node, field string) []v1alpha1.Window {
	return list(d, n, field, func(item *yaml.Node, f string) v1alpha1.Window {
		w := v1alpha1.Window{Kind: v1alpha1.WindowAllow}
		hasSchedule, hasDuration := false, false
		d.fields(item, f, fieldSet{
			"schedule": func(v *yaml.Node, f string) {
				hasSchedule = true
				w.Schedule = d.str(v, f)
			},
			"duration": func(v *yaml.Node, f string) {
				hasDuration = true
				w.Duration = metav1.Duration{Duration: d.duration(v, f)}
			},
			"timeZone": func(v *yaml.Node, f string) { w.TimeZone = d.str(v, f) },
			"kind": func(v *yaml.Node, f string) {
				switch k := v1alpha1.WindowKind(d.str(v, f)); k {
				case v1alpha1.WindowAllow, v1alpha1.WindowDeny:
					w.Kind = k
				default:
					d.errorf(v, f, "%q is not allow or deny", k)
				}
			},
			"scheduled": func(v *yaml.Node, f string) { w.Scheduled = d.boolean(v, f) },
		})
		if deref(item).Kind != yaml.MappingNode {
			return w // reported by fields
		}
		if !hasSchedule {
			d.errorf(item, f, "schedule is required: a cron expression of when the window opens")
		}
		if !hasDuration {
			d.errorf(item, f, "duration is required, like 4h")
		}
		if hasSchedule && w.Schedule != "" && w.Duration.Duration > 0 {
			if err := planner.CheckWindows([]v1alpha1.Window{w}, time.Now()); err != nil {
				d.errorf(item, f, "%s", strings.TrimPrefix(err.Error(), "spec.windows[0]."))
			}
		}
		return w
	})
}
