package instances

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/internal/forge"
	"github.com/kudod-dev/kudod/manifests"
)

// twoSteps is a serial plan of two steps, config then app.
func twoSteps() *manifests.Plan {
	return &manifests.Plan{Name: "update", Phases: []manifests.Phase{{Name: "main", Steps: []manifests.Step{{Name: "config"}, {Name: "app"}}}}}
}

// failedAtApp is an instance whose update plan (uid u1, from git at commitB) failed in its
// second step after the first completed.
func failedAtApp() *v1alpha1.Instance {
	done := metav1.NewTime(time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC))
	tree := applier.NewPlanStatus(twoSteps(), "u1", v1alpha1.TriggerGit, commitB, nil, done.Time)
	tree.Status, tree.Message = v1alpha1.StatusFatalError, "step app: refused"
	tree.Phases[0].Status = v1alpha1.StatusFatalError
	tree.Phases[0].Steps[0] = v1alpha1.StepStatus{Name: "config", Status: v1alpha1.StatusComplete, LastUpdated: &done}
	tree.Phases[0].Steps[1] = v1alpha1.StepStatus{Name: "app", Status: v1alpha1.StatusFatalError, Message: "refused", LastUpdated: &done}
	inst := &v1alpha1.Instance{ObjectMeta: metav1.ObjectMeta{Namespace: "data", Name: "lg"}}
	inst.Spec.Source = v1alpha1.SourceRef{Repository: "platform", Revision: commitB}
	inst.Spec.Plan = &v1alpha1.PlanRequest{Name: "update", UID: "u1", Action: "update"}
	inst.Status.HandledPlanRequest = "u1"
	inst.Status.Plans = []v1alpha1.PlanStatus{tree}
	inst.Status.LastPlan = &v1alpha1.PlanSummary{Name: "update", UID: "u1", Status: v1alpha1.StatusFatalError, Trigger: v1alpha1.TriggerGit, Revision: commitB}
	inst.Status.Applied = &v1alpha1.AppliedState{Revision: commitA}
	inst.Status.History = []v1alpha1.HistoryEntry{{Plan: "update", UID: "u1", Trigger: v1alpha1.TriggerGit, Revision: commitB, Outcome: v1alpha1.OutcomeFailed}}
	return inst
}

func TestRetryStart(t *testing.T) {
	req := v1alpha1.RetryRequest{UID: "r1", User: "alice"}
	ps, why := retryStart(failedAtApp(), req, false)
	if why != "" {
		t.Fatalf("refused: %s", why)
	}
	if ps.plan != "update" || ps.uid != "r1" || ps.trigger != v1alpha1.TriggerRetry || ps.revision != commitB || ps.user != "alice" ||
		ps.retryOf != "u1" || ps.continueUID != "u1" || !strings.Contains(ps.reasons[0], "from step app") {
		t.Fatalf("retry start: %+v", ps)
	}
	if ps, _ := retryStart(failedAtApp(), v1alpha1.RetryRequest{UID: "r1", FromStart: true}, false); ps.continueUID != "" {
		t.Errorf("--from-start continues the failed tree")
	}

	// A retry of a retry repeats the first execution, with its schedule and values.
	inst := failedAtApp()
	at := metav1.NewTime(time.Date(2024, 1, 2, 3, 4, 0, 0, time.UTC))
	inst.Status.LastPlan.UID, inst.Status.Plans[0].UID = "r1", "r1"
	inst.Status.History = append(inst.Status.History, v1alpha1.HistoryEntry{Plan: "update", UID: "r1", Trigger: v1alpha1.TriggerRetry, RetryOf: "s1", Schedule: "nightly", ScheduledTime: &at, Parameters: map[string]string{"B": "x"}})
	ps, _ = retryStart(inst, v1alpha1.RetryRequest{UID: "r2"}, false)
	if ps.retryOf != "s1" || ps.continueUID != "r1" || ps.schedule != "nightly" || !ps.scheduledTime.Equal(at.Time) || ps.recorded["B"] != "x" {
		t.Errorf("retry of a retry: %+v", ps)
	}

	refusals := []struct {
		name    string
		edit    func(*v1alpha1.Instance)
		running bool
		want    string
	}{
		{"running", func(*v1alpha1.Instance) {}, true, "a plan is running"},
		{"completed", func(in *v1alpha1.Instance) { in.Status.LastPlan.Status = v1alpha1.StatusComplete }, false, "did not fail (COMPLETE)"},
		{"never ran", func(in *v1alpha1.Instance) { in.Status.LastPlan = nil }, false, "no plan has run yet"},
		{"cleanup", func(in *v1alpha1.Instance) { in.Status.LastPlan.Name = manifests.PlanCleanup }, false, "cleanup plan"},
		{"a newer commit", func(in *v1alpha1.Instance) { in.Spec.Plan.UID = "u2" }, false, "is pending"},
		{"suspended", func(in *v1alpha1.Instance) { in.Spec.Suspend = true }, false, "suspended"},
		{"removed", func(in *v1alpha1.Instance) { now := metav1.Now(); in.DeletionTimestamp = &now }, false, "being removed"},
	}
	for _, r := range refusals {
		inst := failedAtApp()
		r.edit(inst)
		if ps, why := retryStart(inst, req, r.running); ps != nil || !strings.Contains(why, r.want) {
			t.Errorf("%s: %q, want %q", r.name, why, r.want)
		}
	}
	if why := RetryRefusal(failedAtApp()); why != "" {
		t.Errorf("RetryRefusal of a failed plan: %s", why)
	}
}

// TestRetryTree: a retry continues the failed tree: completed steps (and their times) stay,
// the failed and pending ones run again; --from-start, a resumed retry or a tree that no
// longer fits the plan start anew.
func TestRetryTree(t *testing.T) {
	inst := failedAtApp()
	ps, _ := retryStart(inst, v1alpha1.RetryRequest{UID: "r1"}, false)
	now := time.Date(2024, 2, 1, 0, 0, 0, 0, time.UTC)
	tree, ok := retryTree(inst, twoSteps(), *ps, now)
	if !ok {
		t.Fatal("no retry tree")
	}
	steps := tree.Phases[0].Steps
	if tree.UID != "r1" || tree.Trigger != v1alpha1.TriggerRetry || tree.Status != v1alpha1.StatusInProgress || tree.Message != "" ||
		tree.Phases[0].Status != v1alpha1.StatusPending || steps[0].Status != v1alpha1.StatusComplete || steps[0].LastUpdated == nil ||
		steps[1].Status != v1alpha1.StatusPending || steps[1].Message != "" || steps[1].LastUpdated != nil {
		t.Fatalf("retry tree: %+v", tree)
	}
	if inst.Status.Plans[0].Phases[0].Steps[1].Status != v1alpha1.StatusFatalError {
		t.Error("the failed tree was edited in place")
	}
	other := &manifests.Plan{Name: "update", Phases: []manifests.Phase{{Name: "main", Steps: []manifests.Step{{Name: "config"}, {Name: "app"}, {Name: "verify"}}}}}
	for name, tc := range map[string]struct {
		plan *manifests.Plan
		ps   planStart
	}{
		"from the start":     {twoSteps(), planStart{plan: "update", uid: "r1", trigger: v1alpha1.TriggerRetry}},
		"resumed":            {twoSteps(), func() planStart { p := *ps; p.resume = true; return p }()},
		"another plan shape": {other, *ps},
		"not a retry":        {twoSteps(), planStart{plan: "update", uid: "r1", trigger: v1alpha1.TriggerManual}},
	} {
		if _, ok := retryTree(inst, tc.plan, tc.ps, now); ok {
			t.Errorf("%s: continued the failed tree", name)
		}
	}
}

func TestOriginAndAppliedState(t *testing.T) {
	inst := failedAtApp()
	tests := []struct {
		name    string
		ps      planStart
		origin  v1alpha1.Trigger
		applies bool
	}{
		{"git", planStart{plan: "update", trigger: v1alpha1.TriggerGit}, v1alpha1.TriggerGit, true},
		{"cleanup from git", planStart{plan: "cleanup", trigger: v1alpha1.TriggerGit}, v1alpha1.TriggerGit, false},
		{"rollback", planStart{plan: "update", trigger: v1alpha1.TriggerRollback}, v1alpha1.TriggerRollback, true},
		{"retry of git", planStart{plan: "update", trigger: v1alpha1.TriggerRetry, recovery: recovery{retryOf: "u1"}}, v1alpha1.TriggerGit, true},
		{"retry of a schedule", planStart{plan: "backup", trigger: v1alpha1.TriggerRetry, schedule: "nightly", recovery: recovery{retryOf: "s1"}}, v1alpha1.TriggerSchedule, false},
		{"retry of a manual run", planStart{plan: "backup", trigger: v1alpha1.TriggerRetry, recovery: recovery{retryOf: "m1"}}, v1alpha1.TriggerManual, false},
		{"manual", planStart{plan: "update", trigger: v1alpha1.TriggerManual}, v1alpha1.TriggerManual, false},
	}
	for _, tt := range tests {
		if got := originOf(inst, tt.ps); got != tt.origin {
			t.Errorf("%s: origin %s, want %s", tt.name, got, tt.origin)
		}
		if got := appliesDesiredState(inst, tt.ps); got != tt.applies {
			t.Errorf("%s: applies the desired state %v", tt.name, got)
		}
	}
	inst.Spec.Plan.Action = actionRollback
	if got := originOf(inst, planStart{trigger: v1alpha1.TriggerRetry, recovery: recovery{retryOf: "u1"}}); got != v1alpha1.TriggerRollback {
		t.Errorf("retry of a rollback: origin %s", got)
	}
}

func TestHistory(t *testing.T) {
	start, end := metav1.NewTime(time.Unix(100, 0)), metav1.NewTime(time.Unix(160, 0))
	inst := failedAtApp()
	ps := planStart{plan: "update", uid: "r1", trigger: v1alpha1.TriggerRetry, revision: commitB, user: "alice", schedule: "nightly",
		recovery: recovery{retryOf: "u1", scheduledTime: time.Unix(90, 0), shownParams: map[string]string{"DB_PASSWORD": manifests.MaskedValue}}}
	e := historyEntry(ps, inst.Status.Plans[0], &applier.FatalError{Err: errors.New("refused")}, start, end)
	want := v1alpha1.HistoryEntry{Plan: "update", UID: "r1", Trigger: v1alpha1.TriggerRetry, Revision: commitB, Schedule: "nightly",
		ScheduledTime: &metav1.Time{Time: time.Unix(90, 0)}, User: "alice", RetryOf: "u1", StartTime: start, FinishTime: end,
		Status: v1alpha1.StatusFatalError, Outcome: v1alpha1.OutcomeFailed, Message: "step app: refused", FailedStep: "main/app",
		Parameters: map[string]string{"DB_PASSWORD": manifests.MaskedValue}}
	if !reflect.DeepEqual(e, want) {
		t.Fatalf("history entry:\n%+v\nwant\n%+v", e, want)
	}
	if long := historyEntry(ps, v1alpha1.PlanStatus{Message: strings.Repeat("é", 600)}, nil, start, end); len([]rune(long.Message)) != maxHistoryMessage {
		t.Errorf("a long message keeps %d runes", len([]rune(long.Message)))
	}

	for _, tt := range []struct {
		status v1alpha1.ExecutionStatus
		err    error
		want   v1alpha1.Outcome
	}{
		{v1alpha1.StatusComplete, nil, v1alpha1.OutcomeCompleted},
		{v1alpha1.StatusFatalError, &applier.FatalError{Err: errors.New("x")}, v1alpha1.OutcomeFailed},
		{v1alpha1.StatusFatalError, fmt.Errorf("w: %w", &errSuperseded{by: "b"}), v1alpha1.OutcomeSuperseded},
		{v1alpha1.StatusFatalError, &errAborted{user: "bob"}, v1alpha1.OutcomeAborted},
	} {
		if got := outcomeOf(tt.status, tt.err); got != tt.want {
			t.Errorf("outcomeOf(%s, %v) = %s, want %s", tt.status, tt.err, got, tt.want)
		}
	}

	// Bounded, oldest dropped; an end recorded twice is one entry.
	var h []v1alpha1.HistoryEntry
	for i := 0; i < 25; i++ {
		h = appendHistory(h, v1alpha1.HistoryEntry{UID: fmt.Sprint(i)}, 0)
	}
	if len(h) != DefaultHistoryLimit || h[0].UID != "5" || h[19].UID != "24" {
		t.Fatalf("history of 25 with the default limit: %d entries, %s..%s", len(h), h[0].UID, h[len(h)-1].UID)
	}
	h = appendHistory(h, v1alpha1.HistoryEntry{UID: "24", Message: "again"}, 3)
	if len(h) != 3 || h[2].UID != "24" || h[2].Message != "again" || h[1].UID != "23" {
		t.Fatalf("limit 3 with a repeated end: %+v", h)
	}
}

func TestRollbackTarget(t *testing.T) {
	const commitC = "cccccccccccccccccccccccccccccccccccccccc"
	inst := failedAtApp()
	inst.Status.History = append(inst.Status.History, v1alpha1.HistoryEntry{Revision: commitC}, v1alpha1.HistoryEntry{Revision: "cafe" + commitC[4:]})
	tests := []struct {
		to, want, why string
	}{
		{"", commitA, ""},
		{commitC, commitC, ""},
		{"AAAAAAA", commitA, ""},
		{"ccccc", commitC, ""},
		{"ca", "", "not a commit SHA"},
		{"c", "", "not a commit SHA"},
		{"main", "", "not a commit SHA"},
		{"dddd", "", "no revision dddd in the instance's history"},
		{"bbbbbbb", "", "at bbbbbbb already"},
		{commitB, "", "at bbbbbbb already"},
	}
	for _, tt := range tests {
		got, why := rollbackTarget(inst, tt.to)
		if got != tt.want || !strings.Contains(why, tt.why) || (tt.why == "") != (why == "") {
			t.Errorf("to %q: %q %q, want %q %q", tt.to, got, why, tt.want, tt.why)
		}
	}
	inst.Status.History = append(inst.Status.History, v1alpha1.HistoryEntry{Revision: "ccccd" + commitC[5:]})
	if _, why := rollbackTarget(inst, "cccc"); !strings.Contains(why, "several revisions") {
		t.Errorf("an ambiguous prefix: %q", why)
	}
	inst.Status.Applied.Revision = commitB
	if _, why := rollbackTarget(inst, ""); !strings.Contains(why, "nothing to roll back") {
		t.Errorf("the last plan completed: %q", why)
	}
	inst.Status.Applied = nil
	if _, why := rollbackTarget(inst, ""); !strings.Contains(why, "no plan from git has completed") {
		t.Errorf("nothing ever completed: %q", why)
	}
	child := failedAtApp()
	child.Labels = map[string]string{v1alpha1.LabelParent: "data.stack"}
	if why := RollbackRefusal(child, ""); !strings.Contains(why, "roll back the parent") {
		t.Errorf("a child: %q", why)
	}
}

func TestCommitStatus(t *testing.T) {
	inst := failedAtApp()
	inst.Spec.Source.Revision = commitA // rolled back to A
	tests := []struct {
		name  string
		ps    planStart
		state forge.State
		desc  string
		want  forge.Status
	}{
		{"git", planStart{plan: "update", trigger: v1alpha1.TriggerGit, revision: commitB}, forge.StateSuccess, "update plan COMPLETE",
			forge.Status{Repository: "platform", SHA: commitB, Context: "kudod/data/lg", State: forge.StateSuccess, Description: "update plan COMPLETE"}},
		{"schedule", planStart{plan: "backup", trigger: v1alpha1.TriggerSchedule, schedule: "n", revision: commitA}, forge.StateFailure, "x",
			forge.Status{Repository: "platform", SHA: commitA, Context: "kudod/data/lg/backup", State: forge.StateFailure, Description: "x"}},
		{"retry of a schedule", planStart{plan: "backup", trigger: v1alpha1.TriggerRetry, schedule: "n", revision: commitA}, forge.StateSuccess, "x",
			forge.Status{Repository: "platform", SHA: commitA, Context: "kudod/data/lg/backup", State: forge.StateSuccess, Description: "x"}},
		{"rollback running", planStart{plan: "update", trigger: v1alpha1.TriggerRollback, revision: commitA, recovery: recovery{reportSHA: commitB}}, forge.StatePending, "update plan IN_PROGRESS",
			forge.Status{Repository: "platform", SHA: commitB, Context: "kudod/data/lg", State: forge.StatePending, Description: "rolling back to aaaaaaa: update plan IN_PROGRESS"}},
		{"rollback complete", planStart{plan: "update", trigger: v1alpha1.TriggerRollback, revision: commitA, recovery: recovery{reportSHA: commitB}}, forge.StateSuccess, "update plan COMPLETE (2/2 steps, 3s)",
			forge.Status{Repository: "platform", SHA: commitB, Context: "kudod/data/lg", State: forge.StateFailure, Description: "rolled back to aaaaaaa (update plan COMPLETE (2/2 steps, 3s))"}},
		{"rollback failed", planStart{plan: "update", trigger: v1alpha1.TriggerRollback, revision: commitA, recovery: recovery{reportSHA: commitB}}, forge.StateFailure, "update FATAL_ERROR in step app",
			forge.Status{Repository: "platform", SHA: commitB, Context: "kudod/data/lg", State: forge.StateFailure, Description: "rollback to aaaaaaa failed: update FATAL_ERROR in step app"}},
	}
	for _, tt := range tests {
		got, ok := commitStatus(inst, tt.ps, tt.state, tt.desc)
		if !ok || got != tt.want {
			t.Errorf("%s: %+v, want %+v", tt.name, got, tt.want)
		}
	}
	if _, ok := commitStatus(inst, planStart{plan: "backup", trigger: v1alpha1.TriggerManual}, forge.StateSuccess, "x"); ok {
		t.Error("a plan without a commit has a commit status")
	}
}

func TestResolvePlanParameters(t *testing.T) {
	pkg := &manifests.Package{Name: "database"}
	inst := &v1alpha1.Instance{ObjectMeta: metav1.ObjectMeta{Namespace: "data", Name: "db", Annotations: map[string]string{}}}
	inst.Spec.Schedules = []v1alpha1.Schedule{{Name: "nightly", Plan: "backup", Cron: "@daily", TimeZone: "Europe/Berlin",
		Parameters: map[string]string{"BACKUP_NAME": `{{ .Namespace }}-{{ .ScheduledTime | date "0102-1504" }}`, "MODE": "full"}}}
	raw, _ := json.Marshal(v1alpha1.ManualTrigger{Plan: "backup", UID: "m1", Parameters: map[string]string{"BACKUP_NAME": "b1", "DB_PASSWORD": "s3cret"}})
	inst.Annotations[v1alpha1.AnnotationTrigger] = string(raw)
	at := time.Date(2024, 1, 2, 3, 4, 0, 0, time.UTC)
	tests := []struct {
		name string
		ps   planStart
		want map[string]string
		err  string
	}{
		{"a schedule, in its time zone", planStart{trigger: v1alpha1.TriggerSchedule, schedule: "nightly", recovery: recovery{scheduledTime: at}},
			map[string]string{"BACKUP_NAME": "data-0102-0404", "MODE": "full"}, ""},
		{"a manual trigger", planStart{trigger: v1alpha1.TriggerManual, uid: "m1"}, map[string]string{"BACKUP_NAME": "b1", "DB_PASSWORD": "s3cret"}, ""},
		{"a retry of the manual trigger", planStart{trigger: v1alpha1.TriggerRetry, uid: "r1", recovery: recovery{retryOf: "m1"}}, map[string]string{"BACKUP_NAME": "b1", "DB_PASSWORD": "s3cret"}, ""},
		{"a retry of an older trigger: the recorded values", planStart{trigger: v1alpha1.TriggerRetry, recovery: recovery{retryOf: "m0", recorded: map[string]string{"BACKUP_NAME": "b0"}}}, map[string]string{"BACKUP_NAME": "b0"}, ""},
		{"a retry of an older trigger with a masked value", planStart{trigger: v1alpha1.TriggerRetry, recovery: recovery{retryOf: "m0", recorded: map[string]string{"DB_PASSWORD": manifests.MaskedValue}}}, nil, "DB_PASSWORD are gone"},
		{"a retry of a schedule", planStart{trigger: v1alpha1.TriggerRetry, schedule: "nightly", recovery: recovery{retryOf: "s1", scheduledTime: at}},
			map[string]string{"BACKUP_NAME": "data-0102-0404", "MODE": "full"}, ""},
		{"a retry of a schedule that went", planStart{trigger: v1alpha1.TriggerRetry, schedule: "weekly", recovery: recovery{retryOf: "s1", scheduledTime: at}}, nil, "no longer in the instance"},
		{"git", planStart{trigger: v1alpha1.TriggerGit, uid: "m1"}, nil, ""},
	}
	for _, tt := range tests {
		got, err := resolvePlanParameters(inst, pkg, tt.ps)
		if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%s: %v, %v; want %v, %q", tt.name, got, err, tt.want, tt.err)
		}
	}
	if got := maskParameters(pkg, map[string]string{"BACKUP_NAME": "b1", "DB_PASSWORD": "s3cret"}); got["DB_PASSWORD"] != manifests.MaskedValue || got["BACKUP_NAME"] != "b1" {
		t.Errorf("masked: %v", got)
	}
	spec := map[string]string{"A": "1", "B": "2"}
	if got := withPlanParameters(spec, map[string]string{"B": "3"}); got["A"] != "1" || got["B"] != "3" || spec["B"] != "2" {
		t.Errorf("withPlanParameters: %v (spec %v)", got, spec)
	}
}

func TestPlanEvent(t *testing.T) {
	inst := failedAtApp()
	inst.Spec.Operator = v1alpha1.OperatorRef{Name: "ledger", Version: "1.0.0"}
	e := planEvent(inst, v1alpha1.HistoryEntry{Plan: "update", UID: "u1", Trigger: v1alpha1.TriggerGit, Revision: commitB, Status: v1alpha1.StatusFatalError,
		Outcome: v1alpha1.OutcomeFailed, StartTime: metav1.NewTime(time.Unix(100, 0)), FinishTime: metav1.NewTime(time.Unix(112, 500_000_000)), Parameters: map[string]string{"P": "***"}})
	if e.Kind != "PlanEnded" || e.Repository != "platform" || e.Instance.Name != "lg" || e.Operator.Version != "1.0.0" || e.Outcome != "failed" ||
		e.DurationSeconds != 12.5 || e.StartTime.Location() != time.UTC || e.Parameters["P"] != "***" {
		t.Fatalf("event: %+v", e)
	}
}

// A rollback takes over a running plan as a commit does; a retry never does (it is refused
// while a plan runs).
func TestRecoverySupersedes(t *testing.T) {
	running := planStart{plan: "update", uid: "git-1", trigger: v1alpha1.TriggerGit, revision: commitB}
	if !supersedes(planStart{plan: "update", uid: "rb-1", trigger: v1alpha1.TriggerRollback}, running) {
		t.Error("a rollback does not supersede a running plan")
	}
	if supersedes(planStart{plan: "update", uid: "r-1", trigger: v1alpha1.TriggerRetry}, running) {
		t.Error("a retry supersedes a running plan")
	}
	if got := describeTrigger(planStart{plan: "update", trigger: v1alpha1.TriggerRollback}); got != "rollback by spec.onFailure" {
		t.Errorf("describeTrigger of an automatic rollback: %q", got)
	}
	if got := describeTrigger(planStart{plan: "backup", trigger: v1alpha1.TriggerRetry, user: "alice"}); got != "retry of backup by alice" {
		t.Errorf("describeTrigger of a retry: %q", got)
	}
}
