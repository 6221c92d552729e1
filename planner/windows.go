package planner

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// Maintenance windows (docs/operations.md, Windows) say when plans that git triggers may
// start. A window opens at each time of its cron schedule, in its time zone, and stays open
// for its duration, measured as elapsed time (a window opening at 02:30 on the night the
// clocks go back lasts its duration, not to the same wall-clock time). Daylight saving
// follows Schedules: a time that does not exist that day does not open the window, a time
// that occurs twice opens it once. At a moment, a plan may start when no deny window is open
// and, if there are allow windows, one of them is open. A running plan is never stopped by a
// window closing: windows are looked at only before a plan starts.

// maxWindowSteps bounds the search for the next moment windows allow: each step jumps to the
// end of a deny window or the opening of an allow window.
const maxWindowSteps = 1000

// WindowState is what an instance's windows say at a moment.
type WindowState struct {
	// Open: a plan may start now (also when no window applies).
	Open bool
	// Next is, when not Open, the first moment a plan may start; zero when no window allows
	// one in the next five years.
	Next time.Time
	// Deny is set when a deny window is open now.
	Deny bool
	// Message says why a plan waits, for the status, the commit status and events:
	// "waiting for window Sat 22:00 CET".
	Message string
}

// windowRule is a window ready to compute its openings.
type windowRule struct {
	compiled
	w v1alpha1.Window
}

// compileWindow parses a window's schedule and time zone, naming the field in errors.
func compileWindow(w v1alpha1.Window) (windowRule, error) {
	c, err := compile(v1alpha1.Schedule{Cron: w.Schedule, TimeZone: w.TimeZone})
	if err != nil {
		return windowRule{}, errors.New(strings.Replace(err.Error(), "cron:", "schedule:", 1))
	}
	if w.Duration.Duration <= 0 {
		return windowRule{}, fmt.Errorf("duration: %s is not a positive duration", w.Duration.Duration)
	}
	return windowRule{compiled: c, w: w}, nil
}

// openUntil returns when the window, open at t, closes; zero when it is not open at t. With
// openings closer together than the duration, the latest opening counts.
func (r windowRule) openUntil(t time.Time) time.Time {
	start := r.mostRecent(t.Add(-r.w.Duration.Duration), t)
	if start.IsZero() {
		return time.Time{}
	}
	return start.Add(r.w.Duration.Duration)
}

// CheckWindows reports what keeps windows from computing their openings, each error naming
// its field (spec.windows[i].schedule, .timeZone, .duration, .kind).
func CheckWindows(windows []v1alpha1.Window, now time.Time) error {
	var errs []error
	for i, w := range windows {
		r, err := compileWindow(w)
		if err == nil && r.next(now).IsZero() {
			err = fmt.Errorf("schedule: %q has no time in the next five years", w.Schedule)
		}
		if err == nil && w.Kind != "" && w.Kind != v1alpha1.WindowAllow && w.Kind != v1alpha1.WindowDeny {
			err = fmt.Errorf("kind: %q is not allow or deny", w.Kind)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("spec.windows[%d].%w", i, err))
		}
	}
	return errors.Join(errs...)
}

// Windows says whether a plan may start at now. scheduled selects the windows of scheduled
// plans (those that say scheduled: true); otherwise every window applies (plans git
// triggers). Windows that do not compile are reported and ignored by the rest.
func Windows(windows []v1alpha1.Window, scheduled bool, now time.Time) (WindowState, error) {
	var allow, deny []windowRule
	var errs []error
	for i, w := range windows {
		if scheduled && !w.Scheduled {
			continue
		}
		r, err := compileWindow(w)
		if err != nil {
			errs = append(errs, fmt.Errorf("spec.windows[%d].%w", i, err))
			continue
		}
		if w.Kind == v1alpha1.WindowDeny {
			deny = append(deny, r)
		} else {
			allow = append(allow, r)
		}
	}
	err := errors.Join(errs...)
	t := now
	// zone is the time zone of the window whose opening or end t is, for the message.
	zone := time.UTC
	denied := false
	for step := 0; step < maxWindowSteps; step++ {
		if end, r, ok := latestEnd(deny, t); ok {
			if step == 0 {
				denied = true
			}
			t, zone = end, r.loc
			continue
		}
		if len(allow) > 0 && !anyOpen(allow, t) {
			next, r := earliestOpening(allow, t)
			if next.IsZero() {
				return WindowState{Deny: denied, Message: "waiting for a window: none opens in the next five years"}, err
			}
			t, zone = next, r.loc
			continue
		}
		if step == 0 {
			return WindowState{Open: true}, err
		}
		st := WindowState{Next: t, Deny: denied, Message: "waiting for window " + FormatWindowTime(t.In(zone), now)}
		if denied {
			st.Message += ": a deny window is open"
		}
		return st, err
	}
	return WindowState{Deny: denied, Message: "waiting for a window: none found (the windows overlap too often)"}, err
}

// latestEnd returns the latest end among the windows open at t.
func latestEnd(rules []windowRule, t time.Time) (time.Time, windowRule, bool) {
	var end time.Time
	var which windowRule
	for _, r := range rules {
		if u := r.openUntil(t); !u.IsZero() && u.After(end) {
			end, which = u, r
		}
	}
	return end, which, !end.IsZero()
}

func anyOpen(rules []windowRule, t time.Time) bool {
	for _, r := range rules {
		if !r.openUntil(t).IsZero() {
			return true
		}
	}
	return false
}

// earliestOpening returns the first opening after t among the windows; zero if none opens
// within five years.
func earliestOpening(rules []windowRule, t time.Time) (time.Time, windowRule) {
	var first time.Time
	var which windowRule
	for _, r := range rules {
		if n := r.next(t); !n.IsZero() && (first.IsZero() || n.Before(first)) {
			first, which = n, r
		}
	}
	return first, which
}

// FormatWindowTime names a moment for people, in its own time zone: "Sat 22:00 CET" within
// the coming six days, "Sat 26 Dec 22:00 CET" beyond.
func FormatWindowTime(t, now time.Time) string {
	if t.Sub(now) < 6*24*time.Hour {
		return t.Format("Mon 15:04 MST")
	}
	return t.Format("Mon 2 Jan 15:04 MST")
}

// EffectiveWindows are the windows that apply to an instance: its own allow windows if it
// has any, else the repository's; and every deny window of both, since a freeze declared for
// a repository holds for each of its instances (docs/operations.md, Windows).
func EffectiveWindows(instance, repository []v1alpha1.Window) []v1alpha1.Window {
	var out []v1alpha1.Window
	ownAllow := false
	for _, w := range instance {
		if w.Kind != v1alpha1.WindowDeny {
			ownAllow = true
		}
	}
	out = append(out, instance...)
	for _, w := range repository {
		if w.Kind == v1alpha1.WindowDeny || !ownAllow {
			out = append(out, w)
		}
	}
	return out
}

// EffectiveApproval is the list of plans that wait for approval: the instance's when it sets
// spec.approval (an empty list turns the repository's off), else the repository's.
func EffectiveApproval(instance, repository *v1alpha1.Approval) []string {
	switch {
	case instance != nil:
		return instance.Plans
	case repository != nil:
		return repository.Plans
	}
	return nil
}

// NeedsApproval reports whether plan waits for approval under these settings.
func NeedsApproval(plan string, instance, repository *v1alpha1.Approval) bool {
	if plan == "" {
		return false
	}
	for _, p := range EffectiveApproval(instance, repository) {
		if p == plan {
			return true
		}
	}
	return false
}
