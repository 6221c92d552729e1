package manifests

import (
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

func TestInstancePolicyFields(t *testing.T) {
	spec := `  parametersFrom:
    - kind: Secret
      name: db-creds
      key: password
      parameter: TOKEN
    - {kind: ConfigMap, name: settings, optional: true}
    - {kind: Secret, name: more, key: NOTE}
  serviceAccountName: deployer
  dependsOn:
    - name: zk
    - {name: kafka, namespace: streams}
  approval: {plans: [backup, deploy]}
  windows:
    - {schedule: "0 22 * * 6", duration: 4h, timeZone: Europe/Berlin}
    - {schedule: "0 0 24 12 *", duration: 48h, kind: deny, scheduled: true}
  onFailure: rollback
  schedules:
    - name: nightly
      plan: backup
      cron: "@daily"
      parameters: {NOTE: 'nightly-{{ .ScheduledTime | date "0102" }}'}
`
	idx, err := IndexRepository(demoRepo(map[string]string{"instances/a.yaml": inst("data", "app", spec)}), IndexOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if errs := idx.Findings.Errors(); len(errs) > 0 {
		t.Fatal(errs)
	}
	in := idx.Instance("data/app")
	want := []v1alpha1.ParameterSource{
		{Kind: "Secret", Name: "db-creds", Key: "password", Parameter: "TOKEN"},
		{Kind: "ConfigMap", Name: "settings", Optional: true},
		{Kind: "Secret", Name: "more", Key: "NOTE", Parameter: "NOTE"},
	}
	if !reflect.DeepEqual(in.ParametersFrom, want) {
		t.Errorf("parametersFrom = %+v", in.ParametersFrom)
	}
	if in.ServiceAccountName != "deployer" {
		t.Errorf("serviceAccountName = %q", in.ServiceAccountName)
	}
	if !reflect.DeepEqual(in.DependsOn, []v1alpha1.InstanceRef{{Name: "zk", Namespace: "data"}, {Name: "kafka", Namespace: "streams"}}) {
		t.Errorf("dependsOn = %+v", in.DependsOn)
	}
	if in.Approval == nil || !reflect.DeepEqual(in.Approval.Plans, []string{"backup", "deploy"}) {
		t.Errorf("approval = %+v", in.Approval)
	}
	wantW := []v1alpha1.Window{
		{Schedule: "0 22 * * 6", Duration: metav1.Duration{Duration: 4 * time.Hour}, TimeZone: "Europe/Berlin", Kind: v1alpha1.WindowAllow},
		{Schedule: "0 0 24 12 *", Duration: metav1.Duration{Duration: 48 * time.Hour}, Kind: v1alpha1.WindowDeny, Scheduled: true},
	}
	if !reflect.DeepEqual(in.Windows, wantW) {
		t.Errorf("windows = %+v", in.Windows)
	}
	if in.OnFailure != v1alpha1.FailureRollback {
		t.Errorf("onFailure = %q", in.OnFailure)
	}
	if got := in.Schedules[0].Parameters["NOTE"]; got != `nightly-{{ .ScheduledTime | date "0102" }}` {
		t.Errorf("schedule parameters = %q", got)
	}
}

func TestInstancePolicyFieldErrors(t *testing.T) {
	cases := []struct{ name, spec, msg string }{
		{"parametersFrom not a list", "  parametersFrom: {kind: Secret}\n", "spec.parametersFrom must be a list"},
		{"parametersFrom bad kind", "  parametersFrom:\n    - {kind: Pod, name: x}\n", `"Pod" is not Secret or ConfigMap`},
		{"parametersFrom without kind", "  parametersFrom:\n    - {name: x}\n", "spec.parametersFrom[0].kind is required"},
		{"parametersFrom without name", "  parametersFrom:\n    - {kind: Secret}\n", "spec.parametersFrom[0].name is required"},
		{"parametersFrom parameter without key", "  parametersFrom:\n    - {kind: Secret, name: x, parameter: TOKEN}\n", "parameter needs a key"},
		{"parametersFrom unknown field", "  parametersFrom:\n    - {kind: Secret, name: x, keys: [a]}\n", `unknown field "keys"`},
		{"bad service account", "  serviceAccountName: Not_Valid\n", "spec.serviceAccountName"},
		{"dependsOn itself", "  dependsOn:\n    - name: app\n", "cannot depend on itself"},
		{"dependsOn without name", "  dependsOn:\n    - namespace: x\n", "spec.dependsOn[0].name is required"},
		{"approval not a mapping", "  approval: [upgrade]\n", "spec.approval must be a mapping"},
		{"approval of a plan the package lacks", "  approval: {plans: [upgrade]}\n", `spec.approval.plans: demo 1.1.0 has no plan "upgrade" (plans: backup, cleanup, deploy)`},
		{"dependsOn a bad name", "  dependsOn:\n    - name: Bad_Name\n", `spec.dependsOn[0].name "Bad_Name" is not a valid instance name`},
		{"dependsOn a bad namespace", "  dependsOn:\n    - {name: zk, namespace: Data!}\n", `spec.dependsOn[0].namespace "Data!" is not a valid namespace name`},
		{"dependsOn twice", "  dependsOn:\n    - name: zk\n    - {name: zk, namespace: data}\n", "spec.dependsOn[1]: data/zk is listed twice"},
		{"window in the daemon's zone", "  windows:\n    - {schedule: \"@daily\", duration: 1h, timeZone: Local}\n", `spec.windows[0].timeZone: "Local" is the daemon's own zone`},
		{"window bad cron", "  windows:\n    - {schedule: \"61 * * * *\", duration: 1h}\n", "spec.windows[0].schedule"},
		{"window bad duration", "  windows:\n    - {schedule: \"@daily\", duration: soon}\n", `spec.windows[0].duration: "soon"`},
		{"window without duration", "  windows:\n    - {schedule: \"@daily\"}\n", "spec.windows[0].duration"},
		{"window bad kind", "  windows:\n    - {schedule: \"@daily\", duration: 1h, kind: maybe}\n", `"maybe" is not allow or deny`},
		{"window bad zone", "  windows:\n    - {schedule: \"@daily\", duration: 1h, timeZone: Mars/Base}\n", `unknown time zone "Mars/Base"`},
		{"bad onFailure", "  onFailure: retry\n", `spec.onFailure: "retry" is not a failure policy`},
		{"schedule parameters not a map", "  schedules:\n    - {name: n, plan: backup, cron: \"@daily\", parameters: [a]}\n", "spec.schedules[0].parameters must be a mapping"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			idx, err := IndexRepository(demoRepo(map[string]string{"instances/bad.yaml": inst("data", "app", token+c.spec)}), IndexOptions{})
			if err != nil {
				t.Fatal(err)
			}
			errs := idx.Findings.Errors()
			if !strings.Contains(errs.Error(), c.msg) {
				t.Errorf("want an error containing %q, got %v", c.msg, errs)
			}
			if idx.Instance("data/app") != nil {
				t.Errorf("the instance was indexed as valid")
			}
		})
	}
}
