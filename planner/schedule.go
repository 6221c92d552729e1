package planner

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
)

// Schedules follow Kubernetes CronJob (pkg/controller/cronjob, mostRecentScheduleTime), with
// two changes the daemon needs: a run missed by more than startingDeadlineSeconds is reported
// as skipped instead of being dropped silently, and a wall-clock time repeated when daylight
// saving ends fires once.
//
// Daylight saving, in the schedule's time zone (tested with Europe/Berlin):
//   - spring forward (02:00 → 03:00): a time that does not exist that day does not run
//     ("30 2 * * *" skips that day), as CronJob and Argo CronWorkflows do;
//   - fall back (03:00 → 02:00): a time that occurs twice runs at its first occurrence only
//     ("30 2 * * *" runs once, at 02:30 summer time). Schedules whose hour field matches every
//     hour ("0 * * * *", "@hourly", "*/15 * * * *") run in both occurrences of the repeated
//     hour, as Vixie cron does for wildcard jobs: they measure elapsed time, not a time of day.
//
// robfig/cron alone already skips the nonexistent time but fires the repeated one twice.

// TooManyMissed is the number of missed scheduled times above which a decision warns
// (CronJob's limit: more than that points to a clock problem or a deadline to set).
const TooManyMissed = 100

// wakePadding is added to the wait for the next scheduled time, so that a wake-up never comes
// just before it on a skewed clock (CronJob's nextScheduleDelta).
const wakePadding = 100 * time.Millisecond

// ScheduleDecision says what a schedule does at a moment.
type ScheduleDecision struct {
	// Run says to start the schedule's plan for ScheduledTime, subject to its concurrency policy.
	Run bool
	// ScheduledTime is the most recent scheduled time that fell due since the last one handled,
	// or zero when none did. When it is set the caller persists it as the schedule's
	// lastScheduleTime before starting the run, whether it runs or is skipped (Run false), so that
	// no restart or new leader handles it again.
	ScheduledTime time.Time
	// Due counts the scheduled times that fell due since the last one handled, ScheduledTime
	// included, within startingDeadlineSeconds when set; counting stops at TooManyMissed+1.
	// Only ScheduledTime runs: missed times are never backfilled.
	Due int
	// TooManyMissed: Due exceeds TooManyMissed. The caller emits a Warning event (CronJob's
	// reason TooManyMissedTimes: set or decrease startingDeadlineSeconds, or check clock skew).
	TooManyMissed bool
	// Next is the next scheduled time after now (zero when the schedule is suspended): the
	// schedule's status.nextScheduleTime.
	Next time.Time
	// RequeueAfter is how long to wait before asking again: until Next, plus padding against
	// clock skew. Zero when the schedule is suspended (only an edit can wake it).
	RequeueAfter time.Duration
	// Reason says why the plan runs or not, for the status, events and the plan's reasons.
	Reason string
}

// NextRun decides what schedule s does at now. last is the schedule's lastScheduleTime (nil
// when it never fell due); since is when the schedule started counting: the Instance's
// creation time reproduces CronJob (after an edit of the cron expression, a new time between
// last and now runs once, late), the time the current expression was first seen makes an edit
// count from then on. Scheduled times after max(last, since) and up to now are due; only the
// most recent runs, and only if it is at most startingDeadlineSeconds old. A scheduled time
// equal to last never runs again. With neither last nor since, nothing before now is due.
func NextRun(s v1alpha1.Schedule, last *time.Time, since, now time.Time) (ScheduleDecision, error) {
	c, err := compile(s)
	if err != nil {
		return ScheduleDecision{}, fmt.Errorf("schedule %q: %w", s.Name, err)
	}
	if s.Suspend {
		return ScheduleDecision{Reason: "the schedule is suspended"}, nil
	}
	earliest := since
	if last != nil && last.After(earliest) {
		earliest = *last
	}
	if earliest.IsZero() {
		earliest = now
	}
	// A clock that went back (another leader, a corrected clock) must not bring back a time
	// already handled.
	from := now
	if earliest.After(from) {
		from = earliest
	}
	next := c.next(from)
	if next.IsZero() {
		return ScheduleDecision{}, fmt.Errorf("schedule %q: cron: %q has no time in the next five years", s.Name, s.Cron)
	}
	d := ScheduleDecision{Next: next, RequeueAfter: next.Sub(now) + wakePadding}

	scheduled := c.mostRecent(earliest, now)
	if scheduled.IsZero() {
		return d, nil
	}
	d.ScheduledTime = scheduled
	late := now.Sub(scheduled)
	if s.StartingDeadlineSeconds != nil {
		deadline := time.Duration(*s.StartingDeadlineSeconds) * time.Second
		if late > deadline {
			d.Reason = fmt.Sprintf("scheduled time %s missed by %s, more than startingDeadlineSeconds (%d)",
				scheduled.Format(time.RFC3339), late.Truncate(time.Second), *s.StartingDeadlineSeconds)
			return d, nil
		}
		if cut := now.Add(-deadline); cut.After(earliest) {
			earliest = cut
		}
	}
	d.Due = c.count(earliest, now, TooManyMissed+1)
	d.TooManyMissed = d.Due > TooManyMissed
	d.Run = true
	switch {
	case d.TooManyMissed:
		d.Reason = fmt.Sprintf("scheduled time %s, the most recent of more than %d missed times", scheduled.Format(time.RFC3339), TooManyMissed)
	case d.Due > 1:
		d.Reason = fmt.Sprintf("scheduled time %s, the most recent of %d missed times", scheduled.Format(time.RFC3339), d.Due)
	default:
		d.Reason = "scheduled time " + scheduled.Format(time.RFC3339)
	}
	return d, nil
}

// CheckSchedules reports what keeps schedules from computing their times, each error naming
// its field (spec.schedules[i].cron, spec.schedules[i].timeZone): a cron expression that does
// not parse or has no time in the five years after now, an unknown time zone, or "Local",
// which would follow the daemon's machine (CronJob rejects it too). The plan, cleanup,
// duplicate names and the concurrency policy are checked by manifests when the repository is
// indexed; this check covers what that lacks and guards the Instance as the cluster stores it.
func CheckSchedules(schedules []v1alpha1.Schedule, now time.Time) error {
	var errs []error
	for i, s := range schedules {
		c, err := compile(s)
		if err == nil && c.next(now).IsZero() {
			err = fmt.Errorf("cron: %q has no time in the next five years", s.Cron)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("spec.schedules[%d].%w", i, err))
		}
	}
	return errors.Join(errs...)
}

// ConcurrencyAction is what a scheduled run that is due does about the plans of its instance.
type ConcurrencyAction string

// Concurrency actions.
const (
	// StartRun: no other plan runs; start the scheduled plan.
	StartRun ConcurrencyAction = "Start"
	// SkipRun: Forbid and another plan runs; the scheduled time is recorded as skipped.
	SkipRun ConcurrencyAction = "Skip"
	// ReplaceRun: Replace and another plan runs; it stops after its current step, then the
	// scheduled plan starts.
	ReplaceRun ConcurrencyAction = "Replace"
)

// Concurrency applies a schedule's concurrency policy (Forbid when empty) to a due run.
// running names the plan of the instance that runs, "" when none does. The reason is empty
// for StartRun.
func Concurrency(policy v1alpha1.ConcurrencyPolicy, running string) (ConcurrencyAction, string) {
	switch {
	case running == "":
		return StartRun, ""
	case policy == v1alpha1.ReplaceConcurrent:
		return ReplaceRun, "replaces the running plan " + running + " after its current step"
	default:
		return SkipRun, "another plan is running: " + running
	}
}

// ScheduledRunUID is the UID of the run of a schedule at a scheduled time. It depends only
// on the two, so that two computations of the same decision (a retry, a new leader) name the
// same run, as CronJob names its Jobs after the scheduled minute.
func ScheduledRunUID(schedule string, scheduled time.Time) string {
	return fmt.Sprintf("%s-%d", schedule, scheduled.Unix()/60)
}

// compiled is a schedule ready to compute its times.
type compiled struct {
	spec cron.Schedule
	loc  *time.Location
	// everyHour: the hour field matches every hour, so a repeated hour runs twice.
	everyHour bool
}

// compile parses the cron expression and loads the time zone; errors name the field.
func compile(s v1alpha1.Schedule) (compiled, error) {
	spec, err := manifests.ParseCron(s.Cron)
	if err != nil {
		return compiled{}, fmt.Errorf("cron: %w", err)
	}
	loc := time.UTC
	if s.TimeZone != "" {
		if strings.EqualFold(s.TimeZone, "Local") {
			return compiled{}, fmt.Errorf("timeZone: %q is the daemon's own zone; name an IANA time zone such as Europe/Berlin", s.TimeZone)
		}
		if loc, err = time.LoadLocation(s.TimeZone); err != nil {
			return compiled{}, fmt.Errorf("timeZone: unknown time zone %q: %w", s.TimeZone, err)
		}
	}
	const allHours = 1<<24 - 1
	ss, ok := spec.(*cron.SpecSchedule)
	return compiled{spec: spec, loc: loc, everyHour: ok && ss.Hour&allHours == allHours}, nil
}

// next returns the first scheduled time after t, or zero when there is none within five years.
// robfig/cron evaluates the expression in the zone of the time it is given (ParseStandard
// leaves the schedule's own zone unset).
func (c compiled) next(t time.Time) time.Time {
	for {
		n := c.spec.Next(t.In(c.loc))
		if n.IsZero() || !n.After(t) {
			return time.Time{}
		}
		if c.everyHour || !repeatedWallClock(n) {
			return n
		}
		t = n
	}
}

// mostRecent returns the last scheduled time in (after, now], or zero. It looks back from now
// over doubling windows, so that a long downtime costs a few steps rather than one per missed
// time.
func (c compiled) mostRecent(after, now time.Time) time.Time {
	span := now.Sub(after)
	if span <= 0 {
		return time.Time{}
	}
	for window := time.Minute; ; {
		from := after
		if window < span {
			from = now.Add(-window)
		}
		if t := c.next(from); !t.IsZero() && !t.After(now) {
			for n := c.next(t); !n.IsZero() && !n.After(now); n = c.next(t) {
				t = n
			}
			return t
		}
		if window >= span {
			return time.Time{}
		}
		if window > span/2 { // doubling could overflow
			window = span
		} else {
			window *= 2
		}
	}
}

// count counts the scheduled times in (after, now], stopping at limit.
func (c compiled) count(after, now time.Time, limit int) int {
	n := 0
	for t := c.next(after); n < limit && !t.IsZero() && !t.After(now); t = c.next(t) {
		n++
	}
	return n
}

// repeatedWallClock reports whether t's wall-clock time already occurred earlier, in the hour
// repeated when the clocks went back.
func repeatedWallClock(t time.Time) bool {
	start, _ := t.ZoneBounds()
	if start.IsZero() {
		return false
	}
	_, offset := t.Zone()
	_, before := start.Add(-time.Nanosecond).Zone()
	back := time.Duration(before-offset) * time.Second
	return back > 0 && t.Before(start.Add(back))
}
