package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/types"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// TestLaneRefusesOtherNamespaces: a repository whose lane is team-* has an instance file
// targeting kube-system beside one in its lane. `kudod plan --config` rejects it (exit 2) with
// the reason; the daemon deploys the instance in the lane and refuses the other: a failure
// status on the commit names the lane, and nothing is written for it (no Instance, no request
// of kudod in kube-system in the audit log).
func TestLaneRefusesOtherNamespaces(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	s := newGiteaSetup(t, c)
	ns := teamNamespace(t, c, "team-b")
	files := testenv.FixtureOperatorFiles(t, "app", "1.0.0")
	files["instances/ok.yaml"] = instanceFile(ns, "ok", "app", "", "")
	files["instances/intruder.yaml"] = instanceFile("kube-system", "intruder", "app", "", "")
	head := s.push(t, "one instance in the lane, one outside", files)
	cfg := s.config(t, c.Kubeconfig, "    interval: 1s\n    namespaces: [\"team-*\"]\n")

	// At plan time.
	out, errOut, code := runCLI(t, "plan", "--config", cfg, "--to", head)
	if code != 2 || !strings.Contains(out, "kube-system/intruder: rejected") || !strings.Contains(out, "namespace kube-system is outside repository "+repoName(t)+"'s lane (namespaces: team-*)") {
		t.Errorf("kudod plan: exit %d\n%s%s", code, out, errOut)
	}
	if !strings.Contains(out, ns+"/ok: deploy") {
		t.Errorf("kudod plan does not deploy the instance in the lane:\n%s", out)
	}

	// In the daemon.
	auditFrom := len(c.AuditEvents(t))
	startKudod(t, cfg)
	waitPlan(t, c, ns, "ok", "deploy", v1alpha1.StatusComplete, head, 2*time.Minute)
	s.waitStatus(t, head, "kudod/kube-system/intruder", "failure", "outside repository "+repoName(t)+"'s lane", time.Minute)
	if getInstance(c, "kube-system", "intruder") != nil {
		t.Error("the daemon applied the Instance in kube-system")
	}
	for _, e := range c.AuditEvents(t)[auditFrom:] {
		if e.ObjectRef != nil && e.ObjectRef.Namespace == "kube-system" && strings.HasPrefix(e.UserAgent, "kudod") {
			t.Errorf("kudod wrote in kube-system: %s %s %s", e.Verb, e.ObjectRef.Resource, e.ObjectRef.Name)
		}
	}
	// Nor does a later poll change its mind.
	consistently(t, 3*time.Second, "no Instance in kube-system", func() (bool, string) {
		err := c.Client.Get(context.Background(), types.NamespacedName{Namespace: "kube-system", Name: "intruder"}, &v1alpha1.Instance{})
		return err != nil, "the Instance exists"
	})
}
