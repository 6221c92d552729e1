package instances

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/manifests"
)

// Plan-scoped parameters (docs/recovery.md, Plan-scoped parameters) are values one execution
// runs with on top of spec.parameters: `kudod trigger -p`, or a schedule's parameters rendered
// for the time it runs. They are read again from where they come from whenever the execution
// starts or resumes, validated against params.yaml before anything runs, recorded masked, and
// never written to the spec.

// sensitiveParameter reports whether a parameter's values are masked in every status, event
// and message.
func sensitiveParameter(_ *manifests.Package, name string) bool { return manifests.IsSensitive(name) }

// maskParameters returns values as statuses and messages show them.
func maskParameters(pkg *manifests.Package, values map[string]string) map[string]string {
	if len(values) == 0 {
		return nil
	}
	out := make(map[string]string, len(values))
	for k, v := range values {
		if sensitiveParameter(pkg, k) {
			v = manifests.MaskedValue
		}
		out[k] = v
	}
	return out
}

// planParameters resolves the plan-scoped values of an execution, checks them against the
// package and keeps them, and their masked form, in ps. An error refuses the run before
// anything is applied.
func planParameters(inst *v1alpha1.Instance, pkg *manifests.Package, ps *planStart) error {
	values, err := resolvePlanParameters(inst, pkg, *ps)
	if err != nil {
		return fmt.Errorf("plan-scoped parameters: %w", err)
	}
	if len(values) == 0 {
		return nil
	}
	if err := pkg.ValidatePlanParameters(values); err != nil {
		return fmt.Errorf("plan-scoped parameters refused: %w", err)
	}
	ps.params, ps.shownParams = values, maskParameters(pkg, values)
	return nil
}

// resolvePlanParameters finds the values of an execution: a schedule's, rendered for its
// scheduled time; a manual trigger's, from its annotation; for a retry, those of the
// execution it repeats.
func resolvePlanParameters(inst *v1alpha1.Instance, pkg *manifests.Package, ps planStart) (map[string]string, error) {
	switch {
	case ps.schedule != "" && !ps.scheduledTime.IsZero():
		for _, sc := range inst.Spec.Schedules {
			if sc.Name == ps.schedule {
				return scheduleParameters(inst, pkg, sc, ps.scheduledTime)
			}
		}
		if ps.trigger == v1alpha1.TriggerRetry {
			return nil, fmt.Errorf("schedule %s is no longer in the instance: the values of its run are unknown", ps.schedule)
		}
		return nil, nil // the schedule went between its start and now: the run was recorded without one
	case ps.trigger == v1alpha1.TriggerManual:
		return triggerParameters(inst, pkg, ps.uid, nil)
	case ps.trigger == v1alpha1.TriggerRetry && ps.retryOf != "":
		return triggerParameters(inst, pkg, ps.retryOf, ps.recorded)
	}
	return nil, nil
}

// scheduleParameters renders a schedule's parameters for the time a run is scheduled for, in
// the schedule's time zone.
func scheduleParameters(inst *v1alpha1.Instance, pkg *manifests.Package, sc v1alpha1.Schedule, at time.Time) (map[string]string, error) {
	if len(sc.Parameters) == 0 {
		return nil, nil
	}
	loc := time.UTC
	if sc.TimeZone != "" {
		l, err := time.LoadLocation(sc.TimeZone)
		if err != nil {
			return nil, fmt.Errorf("schedule %s: time zone %q: %w", sc.Name, sc.TimeZone, err)
		}
		loc = l
	}
	in := manifests.ScheduleValueInput{ScheduledTime: at.In(loc), Name: inst.Name, Namespace: inst.Namespace}
	out := make(map[string]string, len(sc.Parameters))
	for _, k := range sortedKeys(sc.Parameters) {
		v, err := manifests.RenderScheduleValue(sc.Parameters[k], in)
		switch {
		case err != nil && sensitiveParameter(pkg, k):
			return nil, fmt.Errorf("schedule %s: parameter %s does not render (value masked)", sc.Name, k)
		case err != nil:
			return nil, fmt.Errorf("schedule %s: parameter %s: %w", sc.Name, k, err)
		}
		out[k] = v
	}
	return out, nil
}

// triggerParameters returns the values `kudod trigger -p` gave the trigger uid, from its
// annotation. When a newer trigger replaced the annotation, the values recorded in the
// history stand in, unless one of them is masked.
func triggerParameters(inst *v1alpha1.Instance, pkg *manifests.Package, uid string, recorded map[string]string) (map[string]string, error) {
	if raw, ok := inst.Annotations[v1alpha1.AnnotationTrigger]; ok {
		var mt v1alpha1.ManualTrigger
		if err := json.Unmarshal([]byte(raw), &mt); err == nil && mt.UID == uid {
			return mt.Parameters, nil
		}
	}
	var lost []string
	for k := range recorded {
		if sensitiveParameter(pkg, k) {
			lost = append(lost, k)
		}
	}
	if len(lost) > 0 {
		sort.Strings(lost)
		return nil, fmt.Errorf("the values of %s are gone (a newer kudod trigger replaced them): run kudod trigger again", strings.Join(lost, ", "))
	}
	return recorded, nil
}

// withPlanParameters is spec.parameters with an execution's values over them.
func withPlanParameters(spec, plan map[string]string) map[string]string {
	if len(plan) == 0 {
		return spec
	}
	out := make(map[string]string, len(spec)+len(plan))
	for k, v := range spec {
		out[k] = v
	}
	for k, v := range plan {
		out[k] = v
	}
	return out
}

func sortedKeys(m map[string]string) []string {
	keys := slices.Sorted(maps.Keys(m))
	return keys
}

// releasePlanScoped takes out of the inventory what a run with plan-scoped values applied and
// the instance's own parameters do not render: such objects (a backup named for its night)
// belong to that run, and pruning them after the next plan would delete what the run made.
// kudod leaves them alone from then on (docs/recovery.md, Plan-scoped parameters).
func (r *Controller) releasePlanScoped(ctx context.Context, inst *v1alpha1.Instance, pkg *manifests.Package, ps planStart, run *applier.Run, rp *applier.RenderedPlan) {
	if len(ps.params) == 0 {
		return
	}
	keep, err := r.engine.Rendered(ctx, inst, pkg, inst.Spec.Parameters, run.Children)
	if err != nil {
		logr.FromContextOrDiscard(ctx).Error(err, "telling the objects of a run with plan-scoped parameters from the instance's; they stay in the inventory")
		return
	}
	var released []string
	for id := range rp.Inventory(inst.Namespace) {
		if _, kept := keep[id]; !kept {
			if _, in := run.Inventory[id]; in {
				delete(run.Inventory, id)
				released = append(released, id)
			}
		}
	}
	if len(released) > 0 {
		sort.Strings(released)
		r.recorder.Eventf(inst, nil, corev1.EventTypeNormal, "ObjectsReleased", "RunPlan", "%d objects of this run's plan-scoped parameters are left out of the inventory: kudod neither prunes nor deletes them", len(released))
	}
}
