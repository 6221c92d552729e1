package config

import (
	"reflect"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

func TestParseApprovalAndWindows(t *testing.T) {
	got, err := parse(t, `
repositories:
  - name: prod
    url: https://git.example.com/ops/prod.git
    approval: {plans: [upgrade, update]}
    windows:
      - {schedule: "0 22 * * 6", duration: 4h, timeZone: Europe/Berlin}
      - {schedule: "0 0 24 12 *", duration: 48h, kind: deny, scheduled: true}
  - name: dev
    url: https://git.example.com/ops/dev.git
`)
	if err != nil {
		t.Fatal(err)
	}
	want := repo("prod", "https://git.example.com/ops/prod.git", func(r *Repository) {
		r.Approval = &v1alpha1.Approval{Plans: []string{"upgrade", "update"}}
		r.Windows = []v1alpha1.Window{
			{Schedule: "0 22 * * 6", Duration: metav1.Duration{Duration: 4 * time.Hour}, TimeZone: "Europe/Berlin", Kind: v1alpha1.WindowAllow},
			{Schedule: "0 0 24 12 *", Duration: metav1.Duration{Duration: 48 * time.Hour}, Kind: v1alpha1.WindowDeny, Scheduled: true},
		}
	})
	if !reflect.DeepEqual(got.Repositories[0], want) {
		t.Errorf("got  %+v\nwant %+v", got.Repositories[0], want)
	}
	if got.Repositories[1].Approval != nil || got.Repositories[1].Windows != nil {
		t.Errorf("defaults: %+v", got.Repositories[1])
	}
}

func TestParseApprovalAndWindowsBad(t *testing.T) {
	const head = "repositories:\n  - name: app\n    url: https://git.example.com/o/app.git\n"
	for _, tc := range []struct{ name, yaml, want string }{
		{"approval not a mapping", head + "    approval: [upgrade]\n", `kudod.yaml:4: repositories[0].approval: must be a mapping, not a list`},
		{"approval unknown field", head + "    approval: {plan: [upgrade]}\n", `repositories[0].approval: unknown field "plan"`},
		{"approval empty plan", head + "    approval: {plans: [\"\"]}\n", `repositories[0].approval.plans: plan names must not be empty`},
		{"windows not a list", head + "    windows: {schedule: x}\n", `repositories[0].windows: must be a list, not a mapping`},
		{"window without schedule", head + "    windows: [{duration: 1h}]\n", `repositories[0].windows[0]: schedule is required`},
		{"window without duration", head + "    windows: [{schedule: \"@daily\"}]\n", `repositories[0].windows[0]: duration is required`},
		{"window bad cron", head + "    windows: [{schedule: \"61 * * * *\", duration: 1h}]\n", `kudod.yaml:4: repositories[0].windows[0]: schedule: "61 * * * *" is not a valid cron expression`},
		{"window bad zone", head + "    windows: [{schedule: \"@daily\", duration: 1h, timeZone: Mars/Base}]\n", `repositories[0].windows[0]: timeZone: unknown time zone "Mars/Base"`},
		{"window Local", head + "    windows: [{schedule: \"@daily\", duration: 1h, timeZone: Local}]\n", `timeZone: "Local" is the daemon's own zone`},
		{"window bad kind", head + "    windows: [{schedule: \"@daily\", duration: 1h, kind: maybe}]\n", `repositories[0].windows[0].kind: "maybe" is not allow or deny`},
		{"window zero duration", head + "    windows: [{schedule: \"@daily\", duration: 0s}]\n", `repositories[0].windows[0].duration: must be positive`},
		{"window unknown field", head + "    windows: [{schedule: \"@daily\", duration: 1h, zone: UTC}]\n", `repositories[0].windows[0]: unknown field "zone"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, tc.yaml)
			if err == nil {
				t.Fatalf("want error %q", tc.want)
			}
			if full := strings.ReplaceAll(err.Error(), dir+"/", ""); !strings.Contains(full, tc.want) {
				t.Errorf("error:\n  %s\nwant it to contain:\n  %s", full, tc.want)
			}
		})
	}
}
