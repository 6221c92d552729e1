package planner

import (
	"maps"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kudod-dev/kudod/manifests"
)

// withoutPlans returns a copy of p without the named plans.
func withoutPlans(p *manifests.Package, names ...string) *manifests.Package {
	c := *p
	c.Plans = maps.Clone(p.Plans)
	for _, n := range names {
		delete(c.Plans, n)
	}
	return &c
}

func TestDecideChild(t *testing.T) {
	lc1 := load(t, filepath.Join("testdata", "lifecycle", "1.0.0"))
	lc2 := load(t, filepath.Join("testdata", "lifecycle", "2.0.0"))
	type kv = map[string]string
	child := func(p *manifests.Package, params kv) *State {
		return &State{Namespace: "data", Name: "parent-lifecycle", Package: p, Parameters: params}
	}
	deployed := func(p *manifests.Package, digest string, params kv) *DeployedChild {
		return &DeployedChild{Package: p, Digest: digest, Parameters: params}
	}
	cases := []struct {
		name     string
		deployed *DeployedChild
		new      *State
		action   Action
		plan     string
		reason   string // substring of a reason
		err      string // substring of the rejection
	}{
		{name: "a child that does not exist deploys", new: child(lc1, nil), action: ActionDeploy, plan: "deploy", reason: "new instance of lifecycle"},
		{name: "an unchanged child runs nothing", deployed: deployed(lc1, lc1.Digest, kv{"REPLICAS": "2"}), new: child(lc1, kv{"REPLICAS": "2"}), action: ActionNone},
		{name: "a parameter of the parent's parameterFile changed", deployed: deployed(lc1, lc1.Digest, kv{"REPLICAS": "2"}), new: child(lc1, kv{"REPLICAS": "3"}), action: ActionUpdate, plan: "update", reason: "parameter REPLICAS: 2 → 3"},
		{name: "the child's operator version changed", deployed: deployed(lc1, lc1.Digest, kv{"TIER": ""}), new: child(lc2, kv{"TIER": "gold"}), action: ActionUpgrade, plan: "upgrade", reason: "operator version 1.0.0 → 2.0.0"},
		{name: "an immutable parameter of the child changed", deployed: deployed(lc1, lc1.Digest, kv{"STORAGE_CLASS": "standard"}), new: child(lc1, kv{"STORAGE_CLASS": "fast"}), action: ActionRejected, err: "STORAGE_CLASS is immutable"},
		{name: "the old package is gone from the repository", deployed: deployed(nil, "sha256:old", nil), new: child(lc2, kv{"TIER": "gold"}), action: ActionUpgrade, plan: "upgrade", reason: "package of the child changed"},
		{name: "the package changed in place under the same version", deployed: deployed(lc1, "sha256:before", nil), new: child(lc1, nil), action: ActionUpgrade, plan: "upgrade", reason: "package of the child changed"},
		{name: "the fallback runs update without an upgrade plan", deployed: deployed(nil, "sha256:old", nil), new: child(withoutPlans(lc1, "upgrade"), nil), action: ActionUpgrade, plan: "update"},
		{name: "the fallback runs deploy with neither upgrade nor update", deployed: deployed(nil, "sha256:old", nil), new: child(withoutPlans(lc1, "upgrade", "update"), nil), action: ActionUpgrade, plan: "deploy"},
		{name: "an old version still in the repository is compared normally", deployed: deployed(lc1, "sha256:other", kv{"TIER": ""}), new: child(lc2, kv{"TIER": "gold"}), action: ActionUpgrade, plan: "upgrade", reason: "operator version 1.0.0 → 2.0.0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := DecideChild(c.deployed, c.new)
			if d.Action != c.action || d.Plan != c.plan {
				t.Fatalf("got action %s plan %q (reasons %q, error %q), want %s %q", d.Action, d.Plan, d.Reasons, d.Error, c.action, c.plan)
			}
			if c.reason != "" && !strings.Contains(strings.Join(d.Reasons, "\n"), c.reason) {
				t.Errorf("reasons %q do not mention %q", d.Reasons, c.reason)
			}
			if c.err != "" && !strings.Contains(d.Error, c.err) {
				t.Errorf("error %q does not mention %q", d.Error, c.err)
			}
			if d.Instance != c.new.Name || d.Namespace != c.new.Namespace {
				t.Errorf("decision for %s/%s, want %s", d.Namespace, d.Instance, c.new.Key())
			}
		})
	}
}
