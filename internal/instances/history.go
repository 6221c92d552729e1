package instances

import (
	"errors"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// DefaultHistoryLimit is how many executions status.history keeps unless the daemon's
// --history-limit says otherwise (docs/recovery.md, History).
const DefaultHistoryLimit = 20

// maxHistoryMessage bounds the message of a history entry: the plan tree keeps the whole one
// of the last run, the history keeps twenty.
const maxHistoryMessage = 512

// historyEntry records an execution that ended. Its parameters are the masked plan-scoped
// values.
func historyEntry(ps planStart, tree v1alpha1.PlanStatus, planErr error, start, end metav1.Time) v1alpha1.HistoryEntry {
	e := v1alpha1.HistoryEntry{
		Plan: ps.plan, UID: ps.uid, Trigger: ps.trigger, Revision: ps.revision, Schedule: ps.schedule,
		User: ps.user, RetryOf: ps.retryOf, StartTime: start, FinishTime: end,
		Status: tree.Status, Outcome: outcomeOf(tree.Status, planErr), Message: truncateRunes(tree.Message, maxHistoryMessage),
		Parameters: ps.shownParams,
	}
	if !ps.scheduledTime.IsZero() {
		t := metav1.NewTime(ps.scheduledTime)
		e.ScheduledTime = &t
	}
	if e.Status == v1alpha1.StatusFatalError {
		if ph, st, ok := failedPhaseStep(tree); ok {
			e.FailedStep = ph + "/" + st
		}
	}
	return e
}

// historyFromActive records a plan that ended without its execution (an abort or a newer plan
// after a restart): the active plan says what ran.
func historyFromActive(a *v1alpha1.ActivePlan, status v1alpha1.ExecutionStatus, outcome v1alpha1.Outcome, msg string, end metav1.Time) v1alpha1.HistoryEntry {
	return v1alpha1.HistoryEntry{
		Plan: a.Name, UID: a.UID, Trigger: a.Trigger, Revision: a.Revision, Schedule: a.Schedule,
		ScheduledTime: a.ScheduledTime, User: a.User, RetryOf: a.RetryOf, StartTime: a.StartTime, FinishTime: end,
		Status: status, Outcome: outcome, Message: truncateRunes(msg, maxHistoryMessage), Parameters: a.Parameters,
	}
}

// appendHistory adds an entry, keeping the last limit (DefaultHistoryLimit when limit is not
// positive). An entry of the same UID (an end recorded twice) is replaced.
func appendHistory(h []v1alpha1.HistoryEntry, e v1alpha1.HistoryEntry, limit int) []v1alpha1.HistoryEntry {
	if limit <= 0 {
		limit = DefaultHistoryLimit
	}
	out := make([]v1alpha1.HistoryEntry, 0, min(len(h)+1, limit))
	for _, old := range h {
		if old.UID != e.UID {
			out = append(out, old)
		}
	}
	out = append(out, e)
	if len(out) > limit {
		out = out[len(out)-limit:]
	}
	return out
}

// outcomeOf names how a plan ended.
func outcomeOf(status v1alpha1.ExecutionStatus, planErr error) v1alpha1.Outcome {
	switch {
	case errors.As(planErr, new(*errSuperseded)):
		return v1alpha1.OutcomeSuperseded
	case errors.As(planErr, new(*errAborted)):
		return v1alpha1.OutcomeAborted
	case status == v1alpha1.StatusComplete:
		return v1alpha1.OutcomeCompleted
	}
	return v1alpha1.OutcomeFailed
}

// lastEntry returns the history entry of an execution, nil when the history has none.
func lastEntry(s *v1alpha1.InstanceStatus, uid string) *v1alpha1.HistoryEntry {
	for i := len(s.History) - 1; i >= 0; i-- {
		if s.History[i].UID == uid {
			return &s.History[i]
		}
	}
	return nil
}

// failedPhaseStep names the phase and step where a plan failed.
func failedPhaseStep(ps v1alpha1.PlanStatus) (string, string, bool) {
	for _, ph := range ps.Phases {
		for _, st := range ph.Steps {
			if st.Status == v1alpha1.StatusFatalError {
				return ph.Name, st.Name, true
			}
		}
	}
	return "", "", false
}

func truncateRunes(s string, n int) string {
	if len(s) <= n {
		return s
	}
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// recordSuperseded records in the history a plan still recorded as running that the starting
// one replaces (after a restart), before markStarted ends it.
func (r *Controller) recordSuperseded(s *v1alpha1.InstanceStatus, ps planStart) {
	if s.ActivePlan == nil || s.ActivePlan.UID == ps.uid {
		return
	}
	msg := (&errSuperseded{by: describeStart(ps)}).Error()
	s.History = appendHistory(s.History, historyFromActive(s.ActivePlan, v1alpha1.StatusFatalError, v1alpha1.OutcomeSuperseded, msg, metav1.NewTime(r.now())), r.historyLimit)
}
