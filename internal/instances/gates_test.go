package instances

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

const (
	revA = "3f2a9c1d0e5b8a7f6c4d3e2f1a0b9c8d7e6f5a4b"
	revB = "9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e3f2a1b0c"
)

func TestDecide(t *testing.T) {
	// 2026-12-23 is a Wednesday.
	now := time.Date(2026, 12, 23, 12, 0, 0, 0, time.UTC)
	update := planStart{plan: "update", uid: "u1", trigger: v1alpha1.TriggerGit, revision: revA}
	nightly := []v1alpha1.Window{{Schedule: "0 22 * * *", Duration: metav1.Duration{Duration: 4 * time.Hour}, Kind: v1alpha1.WindowAllow}}
	freeze := []v1alpha1.Window{{Schedule: "0 0 23 12 *", Duration: metav1.Duration{Duration: 48 * time.Hour}, Kind: v1alpha1.WindowDeny}}
	approvedA := &v1alpha1.PlanApproval{Revision: revA[:7], User: "alice"}
	cases := []struct {
		name    string
		in      gateInput
		action  gateAction
		reason  v1alpha1.WaitReason
		message string
		until   time.Time
		by      string
	}{
		{name: "nothing holds it", in: gateInput{plan: update}, action: gateRun},
		{name: "awaiting approval", in: gateInput{plan: update, needsApproval: true}, action: gateWait, reason: v1alpha1.WaitApproval, message: "awaiting approval"},
		{name: "approved for this commit", in: gateInput{plan: update, needsApproval: true, approved: approvedA}, action: gateRun, by: "alice"},
		{name: "approved for another commit", in: gateInput{plan: update, needsApproval: true, approved: &v1alpha1.PlanApproval{Revision: revB}}, action: gateWait, reason: v1alpha1.WaitApproval, message: "awaiting approval"},
		{name: "approved for another plan", in: gateInput{plan: update, needsApproval: true, approved: &v1alpha1.PlanApproval{Revision: revA, Plan: "upgrade"}}, action: gateWait, reason: v1alpha1.WaitApproval},
		{name: "an approval too short to name a commit", in: gateInput{plan: update, needsApproval: true, approved: &v1alpha1.PlanApproval{Revision: "3f2a"}}, action: gateWait, reason: v1alpha1.WaitApproval},
		{name: "rejected", in: gateInput{plan: update, needsApproval: true, approved: approvedA, rejected: &v1alpha1.PlanApproval{Revision: revA, User: "bob"}}, action: gateReject, message: "rejected by bob"},
		{name: "a rejection of another commit", in: gateInput{plan: update, rejected: &v1alpha1.PlanApproval{Revision: revB, User: "bob"}}, action: gateRun},
		{name: "a plan that needs no approval can be rejected while it waits", in: gateInput{plan: update, windows: nightly, now: now, rejected: &v1alpha1.PlanApproval{Revision: revA}}, action: gateReject, message: "rejected by a user"},
		{name: "a cycle", in: gateInput{plan: update, cycle: []string{"d/a", "d/b", "d/a"}}, action: gateReject, message: "dependency cycle: d/a → d/b → d/a"},
		{name: "approval comes before dependencies", in: gateInput{plan: update, needsApproval: true, related: []relatedInstance{{key: "data/zk", busy: "deploy IN_PROGRESS"}}},
			action: gateWait, reason: v1alpha1.WaitApproval, message: "awaiting approval"},
		{name: "dependencies", in: gateInput{plan: update, related: []relatedInstance{{key: "data/zk", busy: "deploy IN_PROGRESS"}, {key: "data/x"}, {key: "data/y", busy: "not found"}}},
			action: gateWait, reason: v1alpha1.WaitDependency, message: "waiting for data/zk (deploy IN_PROGRESS), data/y (not found)"},
		{name: "dependencies ready", in: gateInput{plan: update, related: []relatedInstance{{key: "data/zk"}}}, action: gateRun},
		{name: "a removal waits for its dependents", in: gateInput{plan: planStart{plan: "cleanup", trigger: v1alpha1.TriggerGit}, removal: true, related: []relatedInstance{{key: "data/app", busy: "being removed"}}},
			action: gateWait, reason: v1alpha1.WaitDependency, message: "waiting for the removal of data/app (being removed): it depends on this instance"},
		{name: "dependencies come before windows", in: gateInput{plan: update, windows: nightly, now: now, related: []relatedInstance{{key: "data/zk", busy: "deploy PENDING"}}},
			action: gateWait, reason: v1alpha1.WaitDependency},
		{name: "outside the allow window", in: gateInput{plan: update, windows: nightly, now: now},
			action: gateWait, reason: v1alpha1.WaitWindow, message: "waiting for window Wed 22:00 UTC", until: time.Date(2026, 12, 23, 22, 0, 0, 0, time.UTC)},
		{name: "inside the allow window", in: gateInput{plan: update, windows: nightly, now: now.Add(11 * time.Hour)}, action: gateRun},
		{name: "in a freeze", in: gateInput{plan: update, windows: freeze, now: now},
			action: gateWait, reason: v1alpha1.WaitWindow, message: "waiting for window Fri 00:00 UTC: a deny window is open", until: time.Date(2026, 12, 25, 0, 0, 0, 0, time.UTC)},
		{name: "--ignore-windows", in: gateInput{plan: update, windows: freeze, now: now, ignoreWindows: "carol"}, action: gateRun, by: "carol"},
		{name: "--ignore-windows does not skip the approval", in: gateInput{plan: update, windows: freeze, now: now, ignoreWindows: "carol", needsApproval: true},
			action: gateWait, reason: v1alpha1.WaitApproval},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := decide(c.in)
			if v.action != c.action || v.reason != c.reason || !v.until.Equal(c.until) {
				t.Errorf("got action %d reason %q until %s (%q); want %d %q %s", v.action, v.reason, v.until, v.message, c.action, c.reason, c.until)
			}
			if c.message != "" && v.message != c.message {
				t.Errorf("message %q, want %q", v.message, c.message)
			}
			if by := v.approvedBy + v.windowsIgnoredBy; by != c.by {
				t.Errorf("released by %q, want %q", by, c.by)
			}
		})
	}
}

func TestDependencyState(t *testing.T) {
	now := metav1.Now()
	done := func(edit func(*v1alpha1.Instance)) *v1alpha1.Instance {
		in := &v1alpha1.Instance{}
		in.Spec.Plan = &v1alpha1.PlanRequest{Name: "deploy", UID: "p1"}
		in.Status.HandledPlanRequest = "p1"
		in.Status.LastPlan = &v1alpha1.PlanSummary{Name: "deploy", UID: "p1", Status: v1alpha1.StatusComplete}
		in.Status.Applied = &v1alpha1.AppliedState{Revision: revA}
		if edit != nil {
			edit(in)
		}
		return in
	}
	cases := []struct {
		name string
		dep  *v1alpha1.Instance
		want string
	}{
		{"ready", done(nil), ""},
		{"not found", nil, "not found"},
		{"being removed", done(func(in *v1alpha1.Instance) { in.DeletionTimestamp = &now }), "being removed"},
		{"running", done(func(in *v1alpha1.Instance) { in.Status.ActivePlan = &v1alpha1.ActivePlan{Name: "update"} }), "update IN_PROGRESS"},
		{"waiting", done(func(in *v1alpha1.Instance) {
			in.Status.Waiting = &v1alpha1.WaitingPlan{Name: "update", Message: "awaiting approval"}
		}), "update PENDING: awaiting approval"},
		{"waiting for its own dependencies", done(func(in *v1alpha1.Instance) {
			in.Status.Waiting = &v1alpha1.WaitingPlan{Name: "update", Reason: v1alpha1.WaitDependency, Message: "waiting for data/zk (deploy PENDING)"}
		}), "update PENDING: waiting for its dependencies"},
		{"a new plan not started yet", done(func(in *v1alpha1.Instance) { in.Spec.Plan = &v1alpha1.PlanRequest{Name: "update", UID: "p2"} }), "update PENDING"},
		{"a manual trigger", done(func(in *v1alpha1.Instance) {
			in.Annotations = map[string]string{v1alpha1.AnnotationTrigger: `{"plan":"backup","uid":"t1"}`}
		}), "manual plan PENDING"},
		{"a manual trigger handled", done(func(in *v1alpha1.Instance) {
			in.Annotations = map[string]string{v1alpha1.AnnotationTrigger: `{"plan":"backup","uid":"t1"}`}
			in.Status.HandledTrigger = "t1"
		}), ""},
		{"failed", done(func(in *v1alpha1.Instance) { in.Status.LastPlan.Status = v1alpha1.StatusFatalError }), "deploy FATAL_ERROR"},
		{"never deployed", done(func(in *v1alpha1.Instance) { in.Status.Applied = nil }), "not deployed yet"},
		{"a later manual plan completed", done(func(in *v1alpha1.Instance) {
			in.Status.LastPlan = &v1alpha1.PlanSummary{Name: "backup", Status: v1alpha1.StatusComplete, Trigger: v1alpha1.TriggerManual}
		}), ""},
	}
	for _, c := range cases {
		if got := dependencyState(c.dep); got != c.want {
			t.Errorf("%s: got %q, want %q", c.name, got, c.want)
		}
	}
	if dependentState(nil) != "" || dependentState(done(nil)) == "" {
		t.Error("dependentState: a dependent that exists holds the removal back, one that is gone does not")
	}
}

func TestParseApproval(t *testing.T) {
	cases := []struct {
		raw  string
		want *v1alpha1.PlanApproval
	}{
		{"", nil},
		{`{"revision":"` + revA + `","plan":"update","user":"alice"}`, &v1alpha1.PlanApproval{Revision: revA, Plan: "update", User: "alice"}},
		{"3F2A9C1", &v1alpha1.PlanApproval{Revision: "3f2a9c1"}},
		{" 3f2a9c1\n", &v1alpha1.PlanApproval{Revision: "3f2a9c1"}},
		{"3f2a", nil},
		{`{"revision":`, nil},
	}
	for _, c := range cases {
		in := &v1alpha1.Instance{}
		in.Annotations = map[string]string{v1alpha1.AnnotationApproved: c.raw}
		got := parseApproval(in, v1alpha1.AnnotationApproved)
		if (got == nil) != (c.want == nil) || (got != nil && *got != *c.want) {
			t.Errorf("%q: got %+v, want %+v", c.raw, got, c.want)
		}
	}
	if !(&v1alpha1.PlanApproval{Revision: "3f2a9c1"}).Matches(revA, "update") || (&v1alpha1.PlanApproval{Revision: "3f2a9c1"}).Matches(revB, "update") {
		t.Error("Matches: a prefix of the commit matches it, not another")
	}
}
