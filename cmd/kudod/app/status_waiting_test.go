package app

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// TestStatusShowsWaitingPlans: a plan that waits shows in the table, the tree and the JSON.
func TestStatusShowsWaitingPlans(t *testing.T) {
	since := metav1.NewTime(time.Date(2026, 12, 23, 12, 0, 0, 0, time.UTC))
	in := v1alpha1.Instance{}
	in.Name, in.Namespace = "kafka", "data"
	in.Spec.Operator = v1alpha1.OperatorRef{Name: "ordered", Version: "1.0.0"}
	in.Status.Plans = []v1alpha1.PlanStatus{{Name: "update", Strategy: "serial", Status: v1alpha1.StatusPending, Message: "awaiting approval", UID: "u1"}}
	in.Status.LastPlan = &v1alpha1.PlanSummary{Name: "update", UID: "u1", Status: v1alpha1.StatusPending, Message: "awaiting approval"}
	in.Status.Waiting = &v1alpha1.WaitingPlan{Name: "update", UID: "u1", Revision: "3f2a9c1d0e5b8a7f", Reason: v1alpha1.WaitApproval, Message: "awaiting approval", Since: since}

	if row := strings.Join(tableRow(&in, false), " "); !strings.Contains(row, "update PENDING (awaiting approval)") {
		t.Errorf("table row: %s", row)
	}
	tree := planTree(&in)
	for _, want := range []string{"Waiting: plan update of commit 3f2a9c1: awaiting approval, since 2026-12-23 12:00:00", "Plan update (serial strategy) [PENDING] (awaiting approval)"} {
		if !strings.Contains(tree, want) {
			t.Errorf("tree lacks %q:\n%s", want, tree)
		}
	}
	js := toJSON([]v1alpha1.Instance{in})
	if w := js.Instances[0].Waiting; w == nil || w.Reason != "approval" || w.Message != "awaiting approval" || !w.Since.Equal(since.Time) {
		t.Errorf("json waiting: %+v", w)
	}
}
