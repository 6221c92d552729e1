package instances

import (
	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/internal/notify"
)

// Notifier takes plan outcomes (notify.Notifier); Notify must not block.
type Notifier interface {
	Notify(e notify.Event)
}

// notifyEnd tells the notifications how a plan ended, from its history entry: no value of a
// sensitive parameter is in it.
func (r *Controller) notifyEnd(inst *v1alpha1.Instance, e v1alpha1.HistoryEntry) {
	if r.notifier == nil {
		return
	}
	r.notifier.Notify(planEvent(inst, e))
}

func planEvent(inst *v1alpha1.Instance, e v1alpha1.HistoryEntry) notify.Event {
	return notify.Event{
		Kind:       notify.EventKindPlanEnded,
		Repository: inst.Spec.Source.Repository,
		Instance:   notify.InstanceRef{Namespace: inst.Namespace, Name: inst.Name},
		Operator:   notify.OperatorRef{Name: inst.Spec.Operator.Name, Version: inst.Spec.Operator.Version, AppVersion: inst.Spec.Operator.AppVersion},
		Plan:       e.Plan, UID: e.UID, Trigger: string(e.Trigger), Schedule: e.Schedule, User: e.User, RetryOf: e.RetryOf,
		Revision: e.Revision, Outcome: string(e.Outcome), Status: string(e.Status), Message: e.Message, FailedStep: e.FailedStep,
		StartTime: e.StartTime.UTC(), FinishTime: e.FinishTime.UTC(),
		DurationSeconds: e.FinishTime.Sub(e.StartTime.Time).Seconds(),
		Parameters:      e.Parameters,
	}
}
