package config

import (
	"reflect"
	"strings"
	"testing"
)

const oneRepo = `
repositories:
  - name: platform
    url: https://git.example.com/ops/platform.git
`

func TestParseNotifications(t *testing.T) {
	cfg, err := parse(t, oneRepo+`
notifications:
  - name: ops
    type: webhook
    url: https://hooks.example.com/kudod
    secretFile: secrets/hmac
    outcomes: [failed, completed]
    plans: [backup]
    triggers: [schedule, retry]
  - name: chat
    type: slack
    urlFile: /var/run/secrets/slack/url
  - name: team
    type: teams
    urlFile: teams-url
`)
	if err != nil {
		t.Fatal(err)
	}
	want := []Notification{
		{Name: "ops", Type: "webhook", URL: "https://hooks.example.com/kudod", SecretFile: "/etc/kudod/secrets/hmac", Outcomes: []string{"failed", "completed"}, Plans: []string{"backup"}, Triggers: []string{"schedule", "retry"}},
		{Name: "chat", Type: "slack", URLFile: "/var/run/secrets/slack/url"},
		{Name: "team", Type: "teams", URLFile: "/etc/kudod/teams-url"},
	}
	if !reflect.DeepEqual(cfg.Notifications, want) {
		t.Fatalf("notifications:\n%+v\nwant\n%+v", cfg.Notifications, want)
	}
	if got := cfg.NotifyTargets(); len(got) != 3 || got[0].SecretFile != "/etc/kudod/secrets/hmac" || got[1].URLFile != "/var/run/secrets/slack/url" {
		t.Errorf("notify targets: %+v", got)
	}
}

func TestParseBadNotifications(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"unknown type", "  - name: a\n    type: pager\n    url: https://x\n", `notifications[0].type: unknown type "pager" (slack, teams, webhook)`},
		{"no type", "  - name: a\n    url: https://x\n", "type is required"},
		{"no name", "  - type: webhook\n    url: https://x\n", "name is required"},
		{"bad name", "  - name: A_B\n    type: webhook\n    url: https://x\n", "is not a DNS-1123 label"},
		{"duplicate name", "  - name: a\n    type: webhook\n    url: https://x\n  - name: a\n    type: webhook\n    url: https://y\n", `duplicate notification name "a"`},
		{"no url", "  - name: a\n    type: webhook\n", "set url or urlFile"},
		{"both", "  - name: a\n    type: webhook\n    url: https://x\n    urlFile: /f\n", "not both"},
		{"not http", "  - name: a\n    type: webhook\n    url: ftp://x\n", "is not an http(s) URL"},
		{"credentials", "  - name: a\n    type: webhook\n    url: https://u:p@x/h\n", "must not contain credentials"},
		{"a Slack URL in the file", "  - name: a\n    type: slack\n    url: https://hooks.slack.com/services/T/B/x\n", "a slack URL is a secret"},
		{"a Teams key", "  - name: a\n    type: teams\n    urlFile: /f\n    secretFile: /k\n", "only a webhook signs"},
		{"unknown outcome", "  - name: a\n    type: webhook\n    url: https://x\n    outcomes: [failure]\n", `unknown value "failure" (completed, failed, aborted, superseded)`},
		{"unknown trigger", "  - name: a\n    type: webhook\n    url: https://x\n    triggers: [cron]\n", `unknown value "cron"`},
		{"unknown field", "  - name: a\n    type: webhook\n    url: https://x\n    channel: ops\n", `unknown field "channel"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parse(t, oneRepo+"notifications:\n"+tc.yaml)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
}
