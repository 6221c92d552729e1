package app

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite golden files")

// statusFixture is a zookeeper instance whose deploy completed and whose not-allowed plan was
// superseded, plus a suspended first-operator.
func statusFixture() []v1alpha1.Instance {
	at := metav1.NewTime(time.Date(2026, 11, 25, 9, 30, 0, 0, time.UTC))
	later := metav1.NewTime(at.Add(90 * time.Second))
	zk := v1alpha1.Instance{
		ObjectMeta: metav1.ObjectMeta{Name: "zk", Namespace: "data", CreationTimestamp: metav1.NewTime(at.Add(-50 * time.Hour))},
		Spec: v1alpha1.InstanceSpec{
			Operator: v1alpha1.OperatorRef{Name: "zookeeper", Version: "0.3.3", AppVersion: "3.6.2"},
			Source:   v1alpha1.SourceRef{Revision: "0123456789abcdef0123456789abcdef01234567"},
		},
		Status: v1alpha1.InstanceStatus{
			LastPlan: &v1alpha1.PlanSummary{Name: "deploy", Status: v1alpha1.StatusComplete, Trigger: v1alpha1.TriggerGit},
			Applied:  &v1alpha1.AppliedState{Revision: "0123456789abcdef0123456789abcdef01234567", ShortRevision: "0123456"},
			Plans: []v1alpha1.PlanStatus{
				{Name: "validation", Strategy: "serial", Status: v1alpha1.StatusNeverRun, Phases: []v1alpha1.PhaseStatus{
					{Name: "connection", Strategy: "serial", Status: v1alpha1.StatusNeverRun, Steps: []v1alpha1.StepStatus{{Name: "connection", Status: v1alpha1.StatusNeverRun}, {Name: "cleanup", Status: v1alpha1.StatusNeverRun}}},
				}},
				{Name: "deploy", Strategy: "serial", Status: v1alpha1.StatusComplete, Trigger: v1alpha1.TriggerGit, LastUpdated: &later, Phases: []v1alpha1.PhaseStatus{
					{Name: "zookeeper", Strategy: "parallel", Status: v1alpha1.StatusComplete, Steps: []v1alpha1.StepStatus{{Name: "deploy", Status: v1alpha1.StatusComplete}}},
					{Name: "validation", Strategy: "serial", Status: v1alpha1.StatusComplete, Steps: []v1alpha1.StepStatus{{Name: "validation", Status: v1alpha1.StatusComplete}, {Name: "cleanup", Status: v1alpha1.StatusComplete}}},
				}},
				{Name: "not-allowed", Strategy: "serial", Status: v1alpha1.StatusFatalError, Message: "superseded by 89abcde", Trigger: v1alpha1.TriggerGit, LastUpdated: &at, Phases: []v1alpha1.PhaseStatus{
					{Name: "not-allowed", Strategy: "serial", Status: v1alpha1.StatusFatalError, Message: "superseded by 89abcde", Steps: []v1alpha1.StepStatus{{Name: "not-allowed", Status: v1alpha1.StatusFatalError, Message: "superseded by 89abcde"}}},
				}},
			},
		},
	}
	web := v1alpha1.Instance{
		ObjectMeta: metav1.ObjectMeta{Name: "first", Namespace: "web", CreationTimestamp: at},
		Spec:       v1alpha1.InstanceSpec{Operator: v1alpha1.OperatorRef{Name: "first-operator", Version: "0.2.0"}, Suspend: true},
		Status: v1alpha1.InstanceStatus{
			ActivePlan: &v1alpha1.ActivePlan{Name: "deploy", Trigger: v1alpha1.TriggerGit},
			Plans: []v1alpha1.PlanStatus{
				{Name: "deploy", Strategy: "serial", Status: v1alpha1.StatusInProgress, Trigger: v1alpha1.TriggerGit, LastUpdated: &at, Phases: []v1alpha1.PhaseStatus{
					{Name: "main", Strategy: "parallel", Status: v1alpha1.StatusInProgress, Steps: []v1alpha1.StepStatus{{Name: "everything", Status: v1alpha1.StatusError, Message: "A transient error when executing step deploy/main/everything. Will retry. connection refused"}}},
				}},
			},
		},
	}
	return []v1alpha1.Instance{zk, web}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update to accept):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// statusNow is when the fixture is printed: 90 seconds after first's deploy started.
var statusNow = time.Date(2026, 11, 25, 9, 31, 30, 0, time.UTC)

// TestStatusTreeGolden: one instance, or any with --tree, is KUDO's plan tree.
func TestStatusTreeGolden(t *testing.T) {
	var buf bytes.Buffer
	p := &statusPrinter{w: &buf, tree: true}
	if err := p.print(statusFixture(), statusNow); err != nil {
		t.Fatal(err)
	}
	golden(t, "status.golden", buf.Bytes())
}

// TestStatusTableGolden: kudod status -A is the table the README shows.
func TestStatusTableGolden(t *testing.T) {
	var buf bytes.Buffer
	p := &statusPrinter{w: &buf, allNamespaces: true}
	if err := p.print(statusFixture(), statusNow); err != nil {
		t.Fatal(err)
	}
	golden(t, "status-table.golden", buf.Bytes())
}

// TestStatusTableOneNamespace: without -A the namespace is the one asked for, and no column
// repeats it, as in kubectl get.
func TestStatusTableOneNamespace(t *testing.T) {
	var buf bytes.Buffer
	p := &statusPrinter{w: &buf}
	if err := p.print(statusFixture()[:1], statusNow); err != nil {
		t.Fatal(err)
	}
	want := "NAME   OPERATOR    VERSION   PLAN     STATUS     REVISION   AGE\n" +
		"zk     zookeeper   0.3.3     deploy   COMPLETE   0123456    2d2h\n"
	if buf.String() != want {
		t.Errorf("got\n%s\nwant\n%s", buf.String(), want)
	}
}

// TestStatusTableWatch: --watch prints the header once, then only the rows that changed; an
// age that grew is not a change.
func TestStatusTableWatch(t *testing.T) {
	var buf bytes.Buffer
	p := &statusPrinter{w: &buf, allNamespaces: true}
	list := statusFixture()
	if err := p.print(list, statusNow); err != nil {
		t.Fatal(err)
	}
	buf.Reset()
	if err := p.print(list, statusNow.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != 0 {
		t.Errorf("nothing changed, yet --watch printed:\n%s", buf.String())
	}
	first := &list[1]
	first.Status.ActivePlan = nil
	first.Status.LastPlan = &v1alpha1.PlanSummary{Name: "deploy", Status: v1alpha1.StatusComplete, Trigger: v1alpha1.TriggerGit}
	first.Status.Plans[0].Status = v1alpha1.StatusComplete
	first.Status.Applied = &v1alpha1.AppliedState{Revision: "89abcdef0123456789abcdef0123456789abcdef", ShortRevision: "89abcde"}
	if err := p.print(list, statusNow.Add(2*time.Minute)); err != nil {
		t.Fatal(err)
	}
	want := "web         first   first-operator   0.2.0     deploy   COMPLETE      89abcde    3m30s\n"
	if buf.String() != want {
		t.Errorf("after first's deploy completed, --watch printed\n%q\nwant\n%q", buf.String(), want)
	}
}

// TestStatusEmpty says so, in a table and as trees.
func TestStatusEmpty(t *testing.T) {
	for _, tree := range []bool{false, true} {
		var buf bytes.Buffer
		p := &statusPrinter{w: &buf, tree: tree, allNamespaces: true}
		if err := p.print(nil, statusNow); err != nil {
			t.Fatal(err)
		}
		if buf.String() != "No instances found.\n" {
			t.Errorf("tree=%v: %q", tree, buf.String())
		}
	}
}

func TestStatusJSONGolden(t *testing.T) {
	var buf bytes.Buffer
	p := &statusPrinter{w: &buf, output: "json"}
	if err := p.print(statusFixture(), statusNow); err != nil {
		t.Fatal(err)
	}
	// The JSON of docs/cli.md: the running plan, or else the last one.
	var got statusJSON
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Instances[0].Plan.Name != "deploy" || got.Instances[1].Plan.Status != "IN_PROGRESS" || got.Instances[0].Revision != "0123456789abcdef0123456789abcdef01234567" {
		t.Errorf("unexpected JSON: %s", buf.String())
	}
	golden(t, "status.json.golden", buf.Bytes())
}
