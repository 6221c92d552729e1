package v1alpha1

import (
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// tree is a deploy plan of two phases: the first complete, the second stopped in its second
// step with a third never reached.
func tree() PlanStatus {
	return PlanStatus{Name: "deploy", UID: "u1", Status: StatusInProgress, Phases: []PhaseStatus{
		{Name: "zookeeper", Status: StatusComplete, Steps: []StepStatus{{Name: "zk", Status: StatusComplete}}},
		{Name: "kafka", Status: StatusInProgress, Steps: []StepStatus{
			{Name: "config", Status: StatusComplete},
			{Name: "brokers", Status: StatusInProgress, Message: "waiting for StatefulSet kafka: 1 of 3 ready"},
			{Name: "topics", Status: StatusPending},
		}},
	}}
}

func TestPlanAndSetPlan(t *testing.T) {
	var s InstanceStatus
	if s.Plan("deploy") != nil {
		t.Fatal("an empty status has a deploy plan")
	}
	s.SetPlan(tree())
	s.SetPlan(PlanStatus{Name: "backup", Status: StatusNeverRun})
	updated := tree()
	updated.Status = StatusComplete
	s.SetPlan(updated)
	if len(s.Plans) != 2 {
		t.Fatalf("%d plans, want 2 (deploy replaced, backup added)", len(s.Plans))
	}
	if got := s.Plan("deploy"); got == nil || got.Status != StatusComplete || s.Plans[0].Name != "deploy" {
		t.Fatalf("deploy was not replaced in place: %+v", s.Plans)
	}
	// Plan returns the tree itself: changes through it are recorded.
	s.Plan("backup").Message = "edited"
	if s.Plans[1].Message != "edited" {
		t.Fatal("Plan returned a copy")
	}
}

func TestEndPlan(t *testing.T) {
	at := time.Date(2026, 5, 4, 3, 2, 1, 0, time.UTC)
	start := metav1.NewTime(at.Add(-time.Minute))
	tests := []struct {
		name       string
		uid        string
		wantActive bool
		wantLast   ExecutionStatus
		wantTree   ExecutionStatus
	}{
		{name: "the active plan ends everywhere", uid: "u1", wantActive: false, wantLast: StatusFatalError, wantTree: StatusFatalError},
		{name: "another uid leaves the running plan alone", uid: "u0", wantActive: true, wantLast: StatusInProgress, wantTree: StatusInProgress},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Plan u1 runs.
			s := InstanceStatus{
				ActivePlan: &ActivePlan{Name: "deploy", UID: "u1", StartTime: start},
				LastPlan:   &PlanSummary{Name: "deploy", UID: "u1", Status: StatusInProgress, StartTime: &start},
				Plans:      []PlanStatus{tree()},
			}
			s.EndPlan(tt.uid, StatusFatalError, "aborted by ops", at)
			if (s.ActivePlan != nil) != tt.wantActive {
				t.Errorf("active plan %+v, want active %v", s.ActivePlan, tt.wantActive)
			}
			if s.LastPlan.Status != tt.wantLast {
				t.Errorf("last plan %s, want %s", s.LastPlan.Status, tt.wantLast)
			}
			if got := s.Plan("deploy"); got.Status != tt.wantTree {
				t.Errorf("tree %s, want %s", got.Status, tt.wantTree)
			}
			if tt.wantLast == StatusFatalError {
				if s.LastPlan.Message != "aborted by ops" || s.LastPlan.FinishTime == nil || !s.LastPlan.FinishTime.Time.Equal(at) {
					t.Errorf("last plan %+v", s.LastPlan)
				}
				if lu := s.Plan("deploy").LastUpdated; lu == nil || !lu.Time.Equal(at) {
					t.Errorf("tree updated at %v", lu)
				}
			}
		})
	}
}

func TestInterrupted(t *testing.T) {
	orig := tree()
	got := orig.Interrupted("superseded by 1a2b3c4")
	if got.Status != StatusFatalError || got.Message != "superseded by 1a2b3c4" {
		t.Fatalf("plan %s %q", got.Status, got.Message)
	}
	want := map[string]ExecutionStatus{
		"zookeeper": StatusComplete, "kafka": StatusFatalError,
		"zk": StatusComplete, "config": StatusComplete, "brokers": StatusFatalError, "topics": StatusPending,
	}
	for _, ph := range got.Phases {
		if ph.Status != want[ph.Name] {
			t.Errorf("phase %s %s, want %s", ph.Name, ph.Status, want[ph.Name])
		}
		for _, st := range ph.Steps {
			if st.Status != want[st.Name] {
				t.Errorf("step %s %s, want %s", st.Name, st.Status, want[st.Name])
			}
			if st.Status == StatusFatalError && st.Message != "superseded by 1a2b3c4" {
				t.Errorf("step %s message %q", st.Name, st.Message)
			}
		}
	}
	if !reflect.DeepEqual(orig, tree()) {
		t.Fatal("Interrupted changed the tree it was called on")
	}
}

func TestSummaryStepsAndFailedStep(t *testing.T) {
	failed := tree()
	failed.Phases[1].Steps[1].Status, failed.Phases[1].Steps[1].Message = StatusFatalError, "pod kafka-0: ImagePullBackOff"
	failed.Phases[1].Steps[0].Message = ""
	tests := []struct {
		name         string
		ps           PlanStatus
		summary      string
		complete     int
		total        int
		failedStep   string
		failedReason string
	}{
		{name: "running", ps: tree(), summary: "waiting for StatefulSet kafka: 1 of 3 ready", complete: 2, total: 4},
		{name: "plan message first", ps: PlanStatus{Message: "render: no template x.yaml", Phases: tree().Phases}, summary: "render: no template x.yaml", complete: 2, total: 4},
		{name: "failed step", ps: failed, summary: "pod kafka-0: ImagePullBackOff", complete: 2, total: 4, failedStep: "brokers", failedReason: "pod kafka-0: ImagePullBackOff"},
		{name: "empty", ps: PlanStatus{}, summary: "", complete: 0, total: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.ps.Summary(); got != tt.summary {
				t.Errorf("Summary() = %q, want %q", got, tt.summary)
			}
			if c, n := tt.ps.StepsComplete(); c != tt.complete || n != tt.total {
				t.Errorf("StepsComplete() = %d/%d, want %d/%d", c, n, tt.complete, tt.total)
			}
			st, ok := tt.ps.FailedStep()
			if ok != (tt.failedStep != "") || st.Name != tt.failedStep || st.Message != tt.failedReason {
				t.Errorf("FailedStep() = %+v %v, want %q", st, ok, tt.failedStep)
			}
		})
	}
}

func TestSetConditionCutsLongMessages(t *testing.T) {
	var s InstanceStatus
	s.SetCondition(metav1.Condition{Type: ConditionReady, Status: metav1.ConditionFalse, Reason: "PlanFailed", Message: strings.Repeat("é", 5000)})
	s.SetCondition(metav1.Condition{Type: ConditionDrifted, Status: metav1.ConditionFalse, Reason: "NoDrift", Message: "short"})
	ready := apimeta.FindStatusCondition(s.Conditions, ConditionReady)
	if n := utf8.RuneCountInString(ready.Message); n != MaxConditionMessageLength || !strings.HasSuffix(ready.Message, "…") {
		t.Fatalf("message of %d characters ending %q", n, ready.Message[len(ready.Message)-4:])
	}
	if got := apimeta.FindStatusCondition(s.Conditions, ConditionDrifted).Message; got != "short" {
		t.Fatalf("short message changed to %q", got)
	}
}

func TestShortRevision(t *testing.T) {
	for in, want := range map[string]string{"": "", "abc": "abc", "0123456789abcdef0123456789abcdef01234567": "0123456"} {
		if got := ShortRevision(in); got != want {
			t.Errorf("ShortRevision(%q) = %q, want %q", in, got, want)
		}
	}
}
