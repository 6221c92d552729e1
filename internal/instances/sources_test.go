package instances

import (
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/internal/mask"
	"github.com/kudod-dev/kudod/manifests"
)

// TestStatusNeverHoldsSensitiveValues: every message the controller writes is masked — a
// template's fail message quoting a password included — and status.applied keeps a salted
// digest of each sensitive value, not the value nor "***".
func TestStatusNeverHoldsSensitiveValues(t *testing.T) {
	m := mask.New()
	m.Add("hunter2-password")
	msg := `render templates/secret.yaml: template: fail: the password "hunter2-password" is too weak`
	s := &v1alpha1.InstanceStatus{
		Conditions: []metav1.Condition{{Type: v1alpha1.ConditionReady, Message: msg}},
		LastPlan:   &v1alpha1.PlanSummary{Message: msg},
		Plans:      []v1alpha1.PlanStatus{{Message: msg, Reasons: []string{msg}, Phases: []v1alpha1.PhaseStatus{{Message: msg, Steps: []v1alpha1.StepStatus{{Message: msg}}}}}},
		Schedules:  []v1alpha1.ScheduleStatus{{LastSkipReason: msg}},
	}
	maskStatus(m, s)
	for _, got := range []string{s.Conditions[0].Message, s.LastPlan.Message, s.Plans[0].Message, s.Plans[0].Reasons[0], s.Plans[0].Phases[0].Message, s.Plans[0].Phases[0].Steps[0].Message, s.Schedules[0].LastSkipReason} {
		if strings.Contains(got, "hunter2") || !strings.Contains(got, "<sensitive>") {
			t.Errorf("not masked: %q", got)
		}
	}

	inst := &v1alpha1.Instance{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "a"}, Spec: v1alpha1.InstanceSpec{Parameters: map[string]string{
		"DB_PASS":   "plain-hunter2",
		"ROOT_CODE": manifests.SensitiveDigest("ns", "a", "ROOT_CODE", "hunter2-root"),
		"REPLICAS":  "3",
	}}}
	applied := appliedState(inst, metav1.NewTime(time.Now()))
	if applied.Parameters["REPLICAS"] != "3" {
		t.Errorf("REPLICAS = %q", applied.Parameters["REPLICAS"])
	}
	for _, n := range []string{"DB_PASS", "ROOT_CODE"} {
		if v := applied.Parameters[n]; !manifests.IsSensitiveDigest(v) || strings.Contains(v, "hunter2") {
			t.Errorf("applied %s = %q, want a digest", n, v)
		}
	}
}

func TestRecordSources(t *testing.T) {
	s := &v1alpha1.InstanceStatus{ParametersFrom: []v1alpha1.ParameterSourceStatus{{Kind: "Secret", Name: "old"}}}
	recordSources(s, planStart{})
	if len(s.ParametersFrom) != 1 {
		t.Error("a plan that read no sources cleared them")
	}
	recordSources(s, planStart{sourcesRead: true, sources: []v1alpha1.ParameterSourceStatus{{Kind: "Secret", Name: "new", Digest: "sha256:1"}}})
	if s.ParametersFrom[0].Name != "new" {
		t.Errorf("sources = %+v", s.ParametersFrom)
	}
}
