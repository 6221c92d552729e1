package v1alpha1

import (
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The status tree of an Instance holds every plan of its package, each with its phases and
// steps, as KUDO's planStatus does (docs/design.md, Statuses). These methods are the only
// code that edits the tree's shape.

// MaxConditionMessageLength bounds the message of an Instance's conditions: a plan's error can
// be long (a template's whole render error), and kubectl shows conditions inline.
const MaxConditionMessageLength = 1000

// shortRevisionLength is how many hex digits of a commit kudod shows.
const shortRevisionLength = 7

// ShortRevision is the short form of a commit SHA that AppliedState.ShortRevision, events and
// commit status descriptions show.
func ShortRevision(sha string) string {
	if len(sha) > shortRevisionLength {
		return sha[:shortRevisionLength]
	}
	return sha
}

// Plan returns the status tree of the named plan, nil if the status has none.
func (s *InstanceStatus) Plan(name string) *PlanStatus {
	for i := range s.Plans {
		if s.Plans[i].Name == name {
			return &s.Plans[i]
		}
	}
	return nil
}

// SetPlan records a plan's tree, replacing the one of the same name.
func (s *InstanceStatus) SetPlan(ps PlanStatus) {
	if cur := s.Plan(ps.Name); cur != nil {
		*cur = ps
		return
	}
	s.Plans = append(s.Plans, ps)
}

// EndPlan records that the plan run uid ended with status and msg at now, in its tree and in
// the last plan; the instance has no active plan after it if that was the one. The daemon uses
// it for a plan that is recorded as running but does not run any more (a restart, an abort).
func (s *InstanceStatus) EndPlan(uid string, status ExecutionStatus, msg string, at time.Time) {
	now := metav1.NewTime(at)
	for i := range s.Plans {
		if s.Plans[i].UID == uid {
			s.Plans[i].Status, s.Plans[i].Message, s.Plans[i].LastUpdated = status, msg, &now
		}
	}
	if s.LastPlan != nil && s.LastPlan.UID == uid {
		s.LastPlan.Status, s.LastPlan.Message, s.LastPlan.FinishTime = status, msg, &now
	}
	if s.ActivePlan != nil && s.ActivePlan.UID == uid {
		s.ActivePlan = nil
	}
}

// SetCondition sets a condition, its message cut to MaxConditionMessageLength characters.
func (s *InstanceStatus) SetCondition(c metav1.Condition) {
	if r := []rune(c.Message); len(r) > MaxConditionMessageLength {
		c.Message = string(r[:MaxConditionMessageLength-1]) + "…"
	}
	apimeta.SetStatusCondition(&s.Conditions, c)
}

// Interrupted returns the tree of a plan that a newer plan or an abort stopped: the plan, and
// each phase and step that was still running, end FATAL_ERROR with why; steps never reached
// stay PENDING, so the tree shows how far the plan got.
func (ps PlanStatus) Interrupted(why string) PlanStatus {
	ps = *ps.DeepCopy()
	ps.Status, ps.Message = StatusFatalError, why
	for i := range ps.Phases {
		ph := &ps.Phases[i]
		if ph.Status.IsRunning() && ph.Status != StatusPending {
			ph.Status, ph.Message = StatusFatalError, why
		}
		for j := range ph.Steps {
			st := &ph.Steps[j]
			if st.Status.IsRunning() && st.Status != StatusPending {
				st.Status, st.Message = StatusFatalError, why
			}
		}
	}
	return ps
}

// Summary is the plan's message, or else the first message of one of its steps: what the
// last plan's summary and `kudod status` show.
func (ps PlanStatus) Summary() string {
	if ps.Message != "" {
		return ps.Message
	}
	for _, ph := range ps.Phases {
		for _, st := range ph.Steps {
			if st.Message != "" {
				return st.Message
			}
		}
	}
	return ""
}

// StepsComplete counts the plan's steps, and those of them that are COMPLETE.
func (ps PlanStatus) StepsComplete() (complete, total int) {
	for _, ph := range ps.Phases {
		for _, st := range ph.Steps {
			total++
			if st.Status == StatusComplete {
				complete++
			}
		}
	}
	return complete, total
}

// FailedStep returns the first step that ended FATAL_ERROR; false if none did.
func (ps PlanStatus) FailedStep() (StepStatus, bool) {
	for _, ph := range ps.Phases {
		for _, st := range ph.Steps {
			if st.Status == StatusFatalError {
				return st, true
			}
		}
	}
	return StepStatus{}, false
}
