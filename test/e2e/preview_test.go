package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// TestPullRequestPreviews: for a pull request kudod posts one comment, updated in place on
// every push, showing the plans and the server-side dry-run diff of every object, and a
// kudod/preview status; a broken template fails the status; removing an instance lists every
// object that would be deleted. Previews never write to the cluster (the API server's audit log
// shows only dry-run writes from kudod meanwhile), and neither Secret data nor DB_PASSWORD
// appears in a comment, a status or the daemon's log.
func TestPullRequestPreviews(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	s := newGiteaSetup(t, c)
	// app renders a ConfigMap from VALUE and a Secret from DB_PASSWORD.
	files := testenv.FixtureOperatorFiles(t, "app", "1.0.0")
	config := "operators/app/1.0.0/templates/config.yaml"
	files["instances/a.yaml"] = instanceFile(s.ns, "a", "app", "", "    DB_PASSWORD: hunter2-old-password\n")
	files["instances/b.yaml"] = instanceFile(s.ns, "b", "app", "", "")
	main := s.push(t, "two apps", files)
	k := startKudod(t, s.config(t, c.Kubeconfig, "    interval: 1s\n    previews: {refs: [\"refs/pull/*/head\"]}\n"))
	for _, name := range []string{"a", "b"} {
		waitPlan(t, c, s.ns, name, "deploy", v1alpha1.StatusComplete, main, 2*time.Minute)
	}
	auditFrom := len(c.AuditEvents(t))

	// A pull request changing a parameter and the password.
	pr := openPR(t, s, map[string]string{"instances/a.yaml": instanceFile(s.ns, "a", "app", "", "    VALUE: two\n    DB_PASSWORD: hunter2-new-password\n")})
	head := s.repo.Refs(t)["refs/pull/1/head"]
	s.waitStatus(t, head, "kudod/preview", "success", "1 instance: 1 update", time.Minute)
	body := waitComment(t, s, pr, head[:7])
	for _, want := range []string{"`" + s.ns + "/a`: update → plan `deploy`", "parameter VALUE set: two", "parameter DB_PASSWORD: (sensitive value changed)",
		"ConfigMap/" + s.ns + "/a-config` configured", "-  value: one", "+  value: two", "Secret/" + s.ns + "/a-db` configured"} {
		if !strings.Contains(body, want) {
			t.Errorf("the comment lacks %q:\n%s", want, body)
		}
	}

	// Push again to the pull request: the same comment is updated.
	second := pushPR(t, s, map[string]string{"instances/b.yaml": instanceFile(s.ns, "b", "app", "", "    VALUE: bee\n")})
	s.waitStatus(t, second, "kudod/preview", "success", "2 instances: 2 update", time.Minute)
	body = waitComment(t, s, pr, second[:7])
	if n := len(s.repo.Comments(t, pr)); n != 1 {
		t.Fatalf("%d comments on the pull request, want one updated in place", n)
	}
	if !strings.Contains(body, "`"+s.ns+"/b`: update") {
		t.Errorf("the updated comment lacks b:\n%s", body)
	}

	// A broken template fails the preview with the error.
	broken := pushPR(t, s, map[string]string{config: "{{ .Params.NOPE }}"})
	s.waitStatus(t, broken, "kudod/preview", "failure", "is broken", time.Minute)
	if body := waitComment(t, s, pr, broken[:7]); !strings.Contains(body, "NOPE") || !strings.Contains(body, "❌") {
		t.Errorf("the comment does not show the template error:\n%s", body)
	}

	// Removing an instance: cleanup, and every object that would be deleted.
	removal := pushPR(t, s, map[string]string{config: files[config], "instances/b.yaml": ""})
	s.waitStatus(t, removal, "kudod/preview", "success", "cleanup", time.Minute)
	body = waitComment(t, s, pr, removal[:7])
	for _, want := range []string{"`" + s.ns + "/b`: cleanup", "ConfigMap/" + s.ns + "/b-config` deleted", "Secret/" + s.ns + "/b-db` deleted"} {
		if !strings.Contains(body, want) {
			t.Errorf("the removal preview lacks %q:\n%s", want, body)
		}
	}

	// Nothing was written: every write kudod sent since the previews began was a dry run.
	for _, e := range c.AuditEvents(t)[auditFrom:] {
		if strings.HasPrefix(e.UserAgent, "kudod") && !e.DryRun() && e.ObjectRef != nil && e.ObjectRef.Resource != "events" && e.ObjectRef.Resource != "leases" {
			t.Errorf("kudod wrote during previews: %s %s", e.Verb, e.RequestURI)
		}
	}
	// No secret anywhere.
	comments := s.repo.Comments(t, pr)
	logs := k.logs()
	for _, secret := range []string{"hunter2-old-password", "hunter2-new-password", "initial-secret-value"} {
		for _, cm := range comments {
			if strings.Contains(cm.Body, secret) {
				t.Errorf("a comment shows %s", secret)
			}
		}
		for _, sha := range []string{head, second, broken, removal} {
			for _, st := range s.repo.CombinedStatus(t, sha).Statuses {
				if strings.Contains(st.Description, secret) {
					t.Errorf("a status shows %s", secret)
				}
			}
		}
		if strings.Contains(logs, secret) {
			t.Errorf("the daemon's log shows %s", secret)
		}
	}
	if getInstance(c, s.ns, "b") == nil {
		t.Fatal("a preview removed an instance")
	}
}

// openPR pushes files to a new branch "feature" (main's tree plus them) and opens a pull
// request into main.
func openPR(t *testing.T, s *giteaSetup, files map[string]string) int {
	t.Helper()
	pushPR(t, s, files)
	return s.repo.OpenPullRequest(t, "feature", "main", "change")
}

// pushPR pushes files to the pull request's branch and returns the new head.
func pushPR(t *testing.T, s *giteaSetup, files map[string]string) string {
	t.Helper()
	return s.pushTo(t, "feature", "update the pull request", files)
}

// waitComment waits for kudod's preview comment to mention a commit, and returns its body.
func waitComment(t *testing.T, s *giteaSetup, pr int, short string) string {
	t.Helper()
	var body string
	eventually(t, time.Minute, "the preview comment for "+short, func() (bool, string) {
		for _, c := range s.repo.Comments(t, pr) {
			if strings.Contains(c.Body, "kudod-preview:") {
				body = c.Body
				return strings.Contains(c.Body, "`"+short+"`"), "comment for another commit"
			}
		}
		return false, "no comment yet"
	})
	return body
}
