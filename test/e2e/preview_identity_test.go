package e2e

import (
	"strings"
	"testing"
	"time"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// TestPreviewsRunAsTheirOwnIdentity: kudod runs on deploy/'s RBAC with the Deployment's flags.
// A pull request from a branch of the repository is previewed as the user kudod-preview, whose
// role reads and dry-runs and whose real writes the API server refuses: the audit log shows
// the preview's dry-runs made as kudod-preview and no write of it. A pull request from a fork,
// by a user previews.authors does not list, is not previewed: its head gets an error status
// saying why, and no comment.
func TestPreviewsRunAsTheirOwnIdentity(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	installRBAC(t, c)
	s := newGiteaSetup(t, c)
	ns := teamNamespace(t, c, "team-p")
	grantOperators(t, c, ns, "kudod-deployer")
	files := testenv.FixtureOperatorFiles(t, "app", "1.0.0")
	files["instances/a.yaml"] = instanceFile(ns, "a", "app", "", "")
	main := s.push(t, "an app", files)
	cfg := s.config(t, serviceAccountKubeconfig(t, c), "    interval: 1s\n    namespaces: [\"team-*\"]\n    previews: {refs: [\"refs/pull/*/head\"], authors: [\"someone-else\"]}\n")
	startKudod(t, cfg, "--leader-election-namespace=kudod-system", "--default-service-account=kudod-deployer", "--preview-user=kudod-preview")
	waitPlan(t, c, ns, "a", "deploy", v1alpha1.StatusComplete, main, 2*time.Minute)
	auditFrom := len(c.AuditEvents(t))

	pr := openPR(t, s, map[string]string{"instances/a.yaml": instanceFile(ns, "a", "app", "", "    VALUE: two\n")})
	head := s.repo.Refs(t)["refs/pull/1/head"]
	s.waitStatus(t, head, "kudod/preview", "success", "1 instance: 1 update", time.Minute)
	if body := waitComment(t, s, pr, head[:7]); !strings.Contains(body, "ConfigMap/"+ns+"/a-config` configured") {
		t.Errorf("the preview comment lacks the ConfigMap's diff:\n%s", body)
	}
	dryRuns := 0
	for _, e := range c.AuditEvents(t)[auditFrom:] {
		if e.ImpersonatedUser == nil || e.ImpersonatedUser.Username != "kudod-preview" || e.ObjectRef == nil {
			continue
		}
		if e.User.Username != daemonAccount {
			t.Errorf("%s acted as kudod-preview", e.User.Username)
		}
		if !e.DryRun() {
			t.Errorf("kudod-preview wrote: %s %s", e.Verb, e.RequestURI)
		}
		dryRuns++
	}
	if dryRuns == 0 {
		t.Error("the audit log shows no dry-run of the preview as kudod-preview")
	}

	// A fork's pull request.
	stranger := s.gitea.CreateUser(t, "stranger")
	s.repo.AddCollaborator(t, stranger)
	fork := s.repo.ForkAs(t, stranger)
	tree := s.trees["feature"]
	forkHead := fork.Push(t, tree, "evil", "from a fork")
	forked := s.repo.OpenPullRequestAs(t, stranger, stranger+":evil", "main", "from a fork")
	s.waitStatus(t, forkHead, "kudod/preview", "error", "comes from a fork", time.Minute)
	consistently(t, 3*time.Second, "no comment on the fork's pull request", func() (bool, string) {
		return len(s.repo.Comments(t, forked)) == 0, "kudod commented"
	})
}
