package app

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

func historyInstance() *v1alpha1.Instance {
	at := func(s int) metav1.Time { return metav1.NewTime(time.Date(2024, 1, 2, 3, 0, s, 0, time.UTC)) }
	in := &v1alpha1.Instance{ObjectMeta: metav1.ObjectMeta{Namespace: "data", Name: "db"}}
	in.Status.History = []v1alpha1.HistoryEntry{
		{Plan: "deploy", UID: "u1", Trigger: v1alpha1.TriggerGit, Revision: "0123456789abcdef0123456789abcdef01234567", StartTime: at(0), FinishTime: at(12), Status: v1alpha1.StatusComplete, Outcome: v1alpha1.OutcomeCompleted},
		{Plan: "backup", UID: "u2", Trigger: v1alpha1.TriggerSchedule, Schedule: "nightly", Revision: "0123456789abcdef0123456789abcdef01234567", StartTime: at(20), FinishTime: at(23),
			Status: v1alpha1.StatusFatalError, Outcome: v1alpha1.OutcomeFailed, Message: "jobs \"db-backup\" is forbidden:\n exceeded quota", FailedStep: "backup/backup",
			Parameters: map[string]string{"BACKUP_NAME": "nightly-0102-0300", "DB_PASSWORD": "***"}},
		{Plan: "backup", UID: "u3", Trigger: v1alpha1.TriggerRetry, User: "alice", RetryOf: "u2", Revision: "0123456789abcdef0123456789abcdef01234567", StartTime: at(40), FinishTime: at(45),
			Status: v1alpha1.StatusComplete, Outcome: v1alpha1.OutcomeCompleted, Parameters: map[string]string{"BACKUP_NAME": "nightly-0102-0300", "DB_PASSWORD": "***"}},
	}
	in.Status.ActivePlan = &v1alpha1.ActivePlan{Name: "restore", UID: "u4", Trigger: v1alpha1.TriggerManual, User: "bob", StartTime: at(50)}
	return in
}

func TestPrintHistory(t *testing.T) {
	var b strings.Builder
	if err := printHistory(&b, historyInstance(), time.Date(2024, 1, 2, 3, 1, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	want := `PLAN      TRIGGER            REVISION   STARTED               DURATION   OUTCOME     PARAMETERS                                      MESSAGE
deploy    git                0123456    2024-01-02 03:00:00   12s        completed   -
backup    schedule nightly   0123456    2024-01-02 03:00:20   3s         failed      BACKUP_NAME=nightly-0102-0300,DB_PASSWORD=***   step backup/backup: jobs "db-backup" is forbidden: exceeded quota
backup    retry by alice     0123456    2024-01-02 03:00:40   5s         completed   BACKUP_NAME=nightly-0102-0300,DB_PASSWORD=***
restore   manual by bob      -          2024-01-02 03:00:50   10s        running     -
`
	if b.String() != want {
		t.Fatalf("got:\n%s\nwant:\n%s", b.String(), want)
	}
	b.Reset()
	if err := printHistory(&b, &v1alpha1.Instance{ObjectMeta: metav1.ObjectMeta{Namespace: "data", Name: "db"}}, time.Now()); err != nil || b.String() != "No plan of data/db has run yet.\n" {
		t.Fatalf("empty history: %q %v", b.String(), err)
	}
}

func TestStatusShowsRollbacksAndLastRuns(t *testing.T) {
	in := historyInstance()
	in.Status.ActivePlan = nil
	in.Status.RolledBack = &v1alpha1.RollbackMark{Revision: "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb", To: "0123456789abcdef0123456789abcdef01234567"}
	in.Status.Applied = &v1alpha1.AppliedState{Revision: "0123456789abcdef0123456789abcdef01234567"}
	if row := strings.Join(tableRow(in, false), " "); !strings.Contains(row, "0123456 (rolled back from bbbbbbb)") {
		t.Errorf("table row: %s", row)
	}
	tree := planTree(in)
	for _, want := range []string{
		"[OUT OF SYNC: bbbbbbb rolled back to 0123456",
		"Last run of each plan (kudod history db -n data):",
		"  backup   completed   retry by alice   0123456   2024-01-02 03:00:45",
		"  deploy   completed   git              0123456   2024-01-02 03:00:12",
	} {
		if !strings.Contains(tree, want) {
			t.Errorf("the tree lacks %q:\n%s", want, tree)
		}
	}
	j := toJSON([]v1alpha1.Instance{*in}).Instances[0]
	if j.RolledBack == nil || len(j.LastRuns) != 2 || j.LastRuns[0].Plan != "backup" || j.LastRuns[0].Outcome != "completed" {
		t.Errorf("json: %+v", j)
	}
}

func TestPlanParameterFlags(t *testing.T) {
	got, err := planParameterFlags([]string{"BACKUP_NAME=b1", "NOTE=a=b"})
	if err != nil || got["BACKUP_NAME"] != "b1" || got["NOTE"] != "a=b" {
		t.Fatalf("%v %v", got, err)
	}
	if got, err := planParameterFlags(nil); got != nil || err != nil {
		t.Errorf("no flags: %v %v", got, err)
	}
	if _, err := planParameterFlags([]string{"NOVALUE"}); err == nil {
		t.Error("a flag without =")
	}
	if _, err := planParameterFlags([]string{"BIG=" + strings.Repeat("x", 17<<10)}); err == nil {
		t.Error("a value too large")
	}
}
