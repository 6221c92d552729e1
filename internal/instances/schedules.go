package instances

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/planner"
)

// scheduleStep is what the schedules of an Instance ask for now.
type scheduleStep struct {
	// start is a scheduled run to start now (already recorded in the status).
	start *planStart
	// replace asks the running plan to stop after its current step, for a Replace schedule.
	replace bool
	// requeue is when to look again (0: no schedule is pending).
	requeue time.Duration
}

// reconcileSchedules decides, for each schedule of an Instance, whether a run is due, with
// CronJob's semantics (planner.NextRun; docs/design.md, Schedules): only the most recent missed time runs, within
// startingDeadlineSeconds; Forbid skips while another plan runs; Replace lets the running plan
// finish its step first. A due run is recorded in the status before it starts, so a restart
// or a new leader never fires the same scheduled time twice. running names the plan running
// now ("" if none).
func (r *Controller) reconcileSchedules(ctx context.Context, inst *v1alpha1.Instance, running string) (scheduleStep, error) {
	var step scheduleStep
	if inst.Spec.Suspend || len(inst.Spec.Schedules) == 0 {
		if len(inst.Status.Schedules) > 0 && len(inst.Spec.Schedules) == 0 {
			return step, r.patchStatus(ctx, inst, func(s *v1alpha1.InstanceStatus) { s.Schedules = nil })
		}
		return step, nil
	}
	now := r.now()
	changed := false
	next := make([]v1alpha1.ScheduleStatus, 0, len(inst.Spec.Schedules))
	for _, sc := range inst.Spec.Schedules {
		st := scheduleStatus(inst, sc.Name)
		if st.Since == nil || st.Cron != sc.Cron || st.TimeZone != sc.TimeZone {
			// New or edited in git: it counts from now, and does not run for the past.
			since := metav1.NewTime(now)
			st = v1alpha1.ScheduleStatus{Name: sc.Name, Cron: sc.Cron, TimeZone: sc.TimeZone, Since: &since, LastScheduleTime: st.LastScheduleTime}
			changed = true
		}
		var last *time.Time
		if st.LastScheduleTime != nil {
			t := st.LastScheduleTime.Time
			last = &t
		}
		d, err := planner.NextRun(sc, last, st.Since.Time, now)
		if err != nil {
			r.recorder.Eventf(inst, nil, corev1.EventTypeWarning, "InvalidSchedule", "Schedule", "schedule %s: %v", sc.Name, err)
			next = append(next, st)
			continue
		}
		if !d.Next.IsZero() && (st.NextScheduleTime == nil || !st.NextScheduleTime.Time.Equal(d.Next)) {
			t := metav1.NewTime(d.Next)
			st.NextScheduleTime, changed = &t, true
		}
		if d.RequeueAfter > 0 && (step.requeue == 0 || d.RequeueAfter < step.requeue) {
			step.requeue = d.RequeueAfter
		}
		if d.TooManyMissed {
			r.recorder.Eventf(inst, nil, corev1.EventTypeWarning, "TooManyMissedTimes", "Schedule", "schedule %s missed more than 100 start times: set or decrease startingDeadlineSeconds, or check clock skew", sc.Name)
		}
		if d.ScheduledTime.IsZero() {
			next = append(next, st)
			continue
		}
		scheduled := metav1.NewTime(d.ScheduledTime)
		skip := func(reason string) {
			st.LastScheduleTime, st.LastSkipped, st.LastSkipReason, changed = &scheduled, &scheduled, reason, true
			r.recorder.Eventf(inst, nil, corev1.EventTypeWarning, "ScheduledRunSkipped", "Schedule", "schedule %s: run of %s at %s skipped: %s", sc.Name, sc.Plan, d.ScheduledTime.Format(time.RFC3339), reason)
		}
		switch {
		case !d.Run:
			skip(d.Reason)
		case step.start != nil:
			// Another schedule starts now: this one waits for the next reconcile.
			step.requeue = time.Second
		default:
			if hold := r.scheduleHold(inst, now); hold != "" {
				skip(hold) // docs/operations.md, Windows
				break
			}
			action, reason := planner.Concurrency(sc.ConcurrencyPolicy, running)
			switch action {
			case planner.SkipRun:
				skip(reason)
			case planner.ReplaceRun:
				// Recorded only when it starts, once the running plan has stopped after its step.
				step.replace = true
				step.requeue = time.Second
			default:
				uid := planner.ScheduledRunUID(sc.Name, d.ScheduledTime)
				st.LastScheduleTime, st.LastRunUID, changed = &scheduled, uid, true
				revision := inst.Spec.Source.Revision
				if inst.Status.Applied != nil {
					revision = inst.Status.Applied.Revision
				}
				step.start = &planStart{plan: sc.Plan, uid: uid, trigger: v1alpha1.TriggerSchedule, schedule: sc.Name, revision: revision,
					reasons: []string{fmt.Sprintf("schedule %s (%s %s) at %s", sc.Name, sc.Cron, zoneOf(sc), d.ScheduledTime.Format(time.RFC3339))}}
				step.start.scheduledTime = d.ScheduledTime
			}
		}
		next = append(next, st)
	}
	if changed || len(next) != len(inst.Status.Schedules) {
		if err := r.patchStatus(ctx, inst, func(s *v1alpha1.InstanceStatus) { s.Schedules = next }); err != nil {
			return scheduleStep{}, err
		}
	}
	return step, nil
}

func scheduleStatus(inst *v1alpha1.Instance, name string) v1alpha1.ScheduleStatus {
	for _, s := range inst.Status.Schedules {
		if s.Name == name {
			return *s.DeepCopy()
		}
	}
	return v1alpha1.ScheduleStatus{Name: name}
}

func zoneOf(s v1alpha1.Schedule) string {
	if s.TimeZone == "" {
		return "UTC"
	}
	return s.TimeZone
}
