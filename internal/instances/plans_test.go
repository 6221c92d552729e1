package instances

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/manifests"
)

const (
	commitA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	commitB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// TestSupersedes: git always takes over a running plan, a manual trigger only with --replace,
// a schedule never at once (Replace waits for the running step), and nothing replaces itself.
func TestSupersedes(t *testing.T) {
	running := planStart{plan: "deploy", uid: "git-1", trigger: v1alpha1.TriggerGit, revision: commitA}
	tests := []struct {
		name string
		want planStart
		ends bool
	}{
		{"a newer commit", planStart{plan: "update", uid: "git-2", trigger: v1alpha1.TriggerGit, revision: commitB}, true},
		{"the same request again", running, false},
		{"a manual trigger", planStart{plan: "backup", uid: "m-1", trigger: v1alpha1.TriggerManual}, false},
		{"a manual trigger with --replace", planStart{plan: "backup", uid: "m-1", trigger: v1alpha1.TriggerManual, replace: true}, true},
		{"a scheduled run", planStart{plan: "backup", uid: "nightly-1", trigger: v1alpha1.TriggerSchedule, replace: true}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := supersedes(tt.want, running); got != tt.ends {
				t.Errorf("supersedes = %v, want %v", got, tt.ends)
			}
		})
	}
}

// TestOutcome: which ends of an execution end its plan, and which leave it to resume.
func TestOutcome(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"complete", nil, outcomeComplete},
		{"a step failed", &applier.FatalError{Err: errors.New("image pull")}, outcomeFatal},
		{"superseded", &errSuperseded{by: "bbbbbbb"}, outcomeSuperseded},
		{"superseded, wrapped as a context's cause", fmt.Errorf("step config: %w", &errSuperseded{by: "bbbbbbb"}), outcomeSuperseded},
		{"aborted", &errAborted{user: "alice"}, outcomeAborted},
		{"stopped: resumes later", errStopped, ""},
		{"the API server is unreachable: resumes later", context.DeadlineExceeded, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := outcome(tt.err); got != tt.want {
				t.Errorf("outcome(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestDescriptions(t *testing.T) {
	tests := []struct {
		ps            planStart
		start, reason string
	}{
		{planStart{plan: "deploy", trigger: v1alpha1.TriggerGit, revision: commitA}, "aaaaaaa", "commit aaaaaaa"},
		{planStart{plan: "backup", trigger: v1alpha1.TriggerSchedule, schedule: "nightly"}, "schedule nightly", "schedule nightly"},
		{planStart{plan: "backup", trigger: v1alpha1.TriggerManual, user: "alice"}, "manual trigger of backup", "manual trigger by alice"},
		{planStart{plan: "backup", trigger: v1alpha1.TriggerManual}, "manual trigger of backup", "manual trigger by a user"},
	}
	for _, tt := range tests {
		if got := describeStart(tt.ps); got != tt.start {
			t.Errorf("describeStart(%+v) = %q, want %q", tt.ps, got, tt.start)
		}
		if got := describeTrigger(tt.ps); got != tt.reason {
			t.Errorf("describeTrigger(%+v) = %q, want %q", tt.ps, got, tt.reason)
		}
	}
	if got := (&errAborted{}).Error(); got != "aborted" {
		t.Errorf("anonymous abort %q", got)
	}
}

func TestFailedAt(t *testing.T) {
	tree := v1alpha1.PlanStatus{Phases: []v1alpha1.PhaseStatus{{Steps: []v1alpha1.StepStatus{
		{Name: "config", Status: v1alpha1.StatusComplete},
		{Name: "brokers", Status: v1alpha1.StatusFatalError, Message: "timed out after 10m"},
	}}}}
	if got := failedAt(tree, errors.New("plan failed")); got != "step brokers: timed out after 10m" {
		t.Errorf("failedAt = %q", got)
	}
	if got := failedAt(v1alpha1.PlanStatus{}, errors.New("render: no template")); got != "render: no template" {
		t.Errorf("failedAt without a failed step = %q", got)
	}
}

func demoPackage() *manifests.Package {
	steps := func(names ...string) []manifests.Step {
		var out []manifests.Step
		for _, n := range names {
			out = append(out, manifests.Step{Name: n})
		}
		return out
	}
	return &manifests.Package{Name: "demo", Plans: map[string]*manifests.Plan{
		"deploy": {Name: "deploy", Phases: []manifests.Phase{{Name: "main", Steps: steps("config", "extra")}}},
		"backup": {Name: "backup", Phases: []manifests.Phase{{Name: "backup", Steps: steps("dump")}}},
	}}
}

// TestMarkStarted: starting a plan records it as active and last, lists every plan of the
// package, marks the request handled, and ends a plan still recorded as active.
func TestMarkStarted(t *testing.T) {
	at := time.Date(2026, 4, 1, 12, 0, 0, 0, time.UTC)
	inst := &v1alpha1.Instance{ObjectMeta: metav1.ObjectMeta{Generation: 3}}
	s := &v1alpha1.InstanceStatus{
		ActivePlan: &v1alpha1.ActivePlan{Name: "backup", UID: "m-1", Trigger: v1alpha1.TriggerManual, StartTime: metav1.NewTime(at.Add(-time.Hour))},
		LastPlan:   &v1alpha1.PlanSummary{Name: "backup", UID: "m-1", Status: v1alpha1.StatusInProgress},
		Plans:      []v1alpha1.PlanStatus{{Name: "backup", UID: "m-1", Status: v1alpha1.StatusInProgress}},
	}
	ps := planStart{plan: "deploy", uid: "git-2", trigger: v1alpha1.TriggerGit, revision: commitB}
	markStarted(s, inst, demoPackage(), ps, at)

	if s.ActivePlan == nil || s.ActivePlan.UID != "git-2" || !s.ActivePlan.StartTime.Time.Equal(at) {
		t.Fatalf("active plan %+v", s.ActivePlan)
	}
	if s.LastPlan.UID != "git-2" || s.LastPlan.Status != v1alpha1.StatusInProgress {
		t.Fatalf("last plan %+v", s.LastPlan)
	}
	if b := s.Plan("backup"); b.Status != v1alpha1.StatusFatalError || b.Message != "superseded by bbbbbbb" {
		t.Fatalf("the plan that was active: %s %q", b.Status, b.Message)
	}
	if d := s.Plan("deploy"); d == nil || d.Status != v1alpha1.StatusNeverRun || d.Phases[0].Steps[1].Status != v1alpha1.StatusNeverRun {
		t.Fatalf("deploy is not listed as never run: %+v", d)
	}
	if s.HandledPlanRequest != "git-2" {
		t.Fatalf("handled request %q", s.HandledPlanRequest)
	}
	ready := apimeta.FindStatusCondition(s.Conditions, v1alpha1.ConditionReady)
	if ready == nil || ready.Status != metav1.ConditionUnknown || ready.ObservedGeneration != 3 {
		t.Fatalf("Ready %+v", ready)
	}

	// Resuming the same plan keeps its start time.
	later := at.Add(time.Minute)
	markStarted(s, inst, demoPackage(), planStart{plan: "deploy", uid: "git-2", trigger: v1alpha1.TriggerGit, revision: commitB, resume: true}, later)
	if !s.ActivePlan.StartTime.Time.Equal(at) {
		t.Fatalf("a resumed plan starts again at %v", s.ActivePlan.StartTime)
	}
}

func TestMarkHandled(t *testing.T) {
	tests := []struct {
		ps               planStart
		request, trigger string
	}{
		{planStart{plan: "deploy", uid: "g", trigger: v1alpha1.TriggerGit}, "g", ""},
		// The cleanup plan's uid is made up by the controller: it answers no request.
		{planStart{plan: manifests.PlanCleanup, uid: "cleanup-x", trigger: v1alpha1.TriggerGit}, "", ""},
		{planStart{plan: "backup", uid: "m", trigger: v1alpha1.TriggerManual}, "", "m"},
		{planStart{plan: "backup", uid: "nightly-1", trigger: v1alpha1.TriggerSchedule}, "", ""},
	}
	for _, tt := range tests {
		var s v1alpha1.InstanceStatus
		markHandled(&s, tt.ps)
		if s.HandledPlanRequest != tt.request || s.HandledTrigger != tt.trigger {
			t.Errorf("%+v: handled request %q trigger %q, want %q %q", tt.ps, s.HandledPlanRequest, s.HandledTrigger, tt.request, tt.trigger)
		}
	}
}

func TestAppliedStateMasksSensitiveParameters(t *testing.T) {
	inst := &v1alpha1.Instance{Spec: v1alpha1.InstanceSpec{
		Operator:   v1alpha1.OperatorRef{Name: "demo", Version: "1.0.0"},
		Parameters: map[string]string{"ADMIN_PASSWORD": "hunter2", "REPLICAS": "3"},
		Source:     v1alpha1.SourceRef{Revision: commitA, PackagePath: "operators/demo/1.0.0"},
	}}
	got := appliedState(inst, metav1.Now())
	if got.ShortRevision != "aaaaaaa" || got.OperatorVersion != "1.0.0" || got.PackagePath != "operators/demo/1.0.0" {
		t.Fatalf("applied %+v", got)
	}
	if got.Parameters["REPLICAS"] != "3" || got.Parameters["ADMIN_PASSWORD"] == "hunter2" || got.Parameters["ADMIN_PASSWORD"] == "" {
		t.Fatalf("parameters %v", got.Parameters)
	}
}
