package bench

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// TestTrackedPlansCounts checks that the counts a cold start's conditions read follow every
// event: an Instance counted once under its last plan, moved when it changes, gone when deleted.
func TestTrackedPlansCounts(t *testing.T) {
	instance := func(name, plan string, status v1alpha1.ExecutionStatus) *v1alpha1.Instance {
		in := &v1alpha1.Instance{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}}
		if plan != "" {
			in.Status.LastPlan = &v1alpha1.PlanSummary{Name: plan, Status: status}
		}
		return in
	}
	type event struct {
		in     *v1alpha1.Instance
		delete bool
	}
	tests := []struct {
		name                  string
		events                []event
		wantLen, wantComplete int
		wantDescribe          string
	}{
		{name: "none", wantDescribe: "0 instances: map[]"},
		{name: "created without a plan", events: []event{{in: instance("a", "", "")}}, wantLen: 1, wantDescribe: "1 instances: map[no plan:1]"},
		{name: "a plan runs, then completes", events: []event{
			{in: instance("a", "", "")}, {in: instance("a", "deploy", v1alpha1.StatusInProgress)}, {in: instance("a", "deploy", v1alpha1.StatusComplete)},
			{in: instance("b", "deploy", v1alpha1.StatusInProgress)},
		}, wantLen: 2, wantComplete: 1, wantDescribe: "2 instances: map[deploy COMPLETE:1 deploy IN_PROGRESS:1]"},
		{name: "the same event twice counts once", events: []event{
			{in: instance("a", "deploy", v1alpha1.StatusComplete)}, {in: instance("a", "deploy", v1alpha1.StatusComplete)},
		}, wantLen: 1, wantComplete: 1, wantDescribe: "1 instances: map[deploy COMPLETE:1]"},
		{name: "another plan is not counted", events: []event{
			{in: instance("a", "update", v1alpha1.StatusComplete)},
		}, wantLen: 1, wantDescribe: "1 instances: map[update COMPLETE:1]"},
		{name: "deleted", events: []event{
			{in: instance("a", "deploy", v1alpha1.StatusComplete)}, {in: instance("b", "deploy", v1alpha1.StatusComplete)},
			{in: instance("a", "", ""), delete: true}, {in: instance("c", "", ""), delete: true},
		}, wantLen: 1, wantComplete: 1, wantDescribe: "1 instances: map[deploy COMPLETE:1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := newTrackedPlans()
			for _, ev := range tt.events {
				if ev.delete {
					p.remove(instanceRef{Namespace: ev.in.Namespace, Name: ev.in.Name})
				} else {
					p.set(ev.in)
				}
			}
			if got := p.len(); got != tt.wantLen {
				t.Errorf("len() = %d, want %d", got, tt.wantLen)
			}
			if got := p.completed("deploy"); got != tt.wantComplete {
				t.Errorf("completed(deploy) = %d, want %d", got, tt.wantComplete)
			}
			if got := describePlans(p); got != tt.wantDescribe {
				t.Errorf("describePlans() = %q, want %q", got, tt.wantDescribe)
			}
		})
	}
}
