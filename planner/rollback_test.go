package planner

import (
	"strings"
	"testing"

	"github.com/kudod-dev/kudod/manifests"
	"github.com/kudod-dev/kudod/test/testenv"
)

// withUpgradePlan is a copy of p with an upgrade plan (its deploy plan under that name).
func withUpgradePlan(p *manifests.Package) *manifests.Package {
	c := *p
	c.Plans = map[string]*manifests.Plan{}
	for k, v := range p.Plans {
		c.Plans[k] = v
	}
	up := *p.Plans[manifests.PlanDeploy]
	up.Name = manifests.PlanUpgrade
	c.Plans[manifests.PlanUpgrade] = &up
	return &c
}

func TestDecideRollback(t *testing.T) {
	ledger := load(t, testenv.FixtureOperator(t, "ledger", "1.0.0"))
	quorumOld := load(t, testenv.FixtureOperator(t, "quorum", "1.36.1-0.1.0"))
	quorumNew := load(t, testenv.FixtureOperator(t, "quorum", "1.37.0-0.2.0"))
	st := func(p *manifests.Package, params map[string]string) *State {
		return &State{Namespace: "data", Name: "x", Package: p, Parameters: params}
	}
	tests := []struct {
		name           string
		failed, target *State
		action         Action
		plan           string
		err            string
	}{
		{name: "a parameter back", failed: st(ledger, map[string]string{"DISK_SIZE": "2Gi"}), target: st(ledger, map[string]string{"DISK_SIZE": "1Gi"}), action: ActionUpdate, plan: "update"},
		{name: "a parameter back to its default", failed: st(ledger, map[string]string{"DISK_SIZE": "2Gi"}), target: st(ledger, nil), action: ActionUpdate, plan: "update"},
		{name: "nothing differs", failed: st(ledger, map[string]string{"VALUE": "a"}), target: st(ledger, map[string]string{"VALUE": "a"}), action: ActionRejected, err: "nothing to roll back"},
		{name: "a parameter whose trigger names a plan", failed: st(quorumOld, map[string]string{"DISK_SIZE": "2Gi"}), target: st(quorumOld, nil), action: ActionUpdate, plan: "not-allowed"},
		{name: "an immutable parameter", failed: st(quorumOld, map[string]string{"DATA_DIR": "/x"}), target: st(quorumOld, nil), action: ActionRejected, err: "DATA_DIR is immutable"},
		{name: "a downgrade without an upgrade plan", failed: st(quorumNew, nil), target: st(quorumOld, nil), action: ActionRejected, err: "is a downgrade, and quorum-1.36.1-0.1.0 has no upgrade plan"},
		{name: "a downgrade to a package with an upgrade plan", failed: st(quorumNew, nil), target: st(withUpgradePlan(quorumOld), nil), action: ActionUpgrade, plan: "upgrade"},
		{name: "back to a newer version", failed: st(quorumOld, nil), target: st(quorumNew, nil), action: ActionUpgrade, plan: "deploy"},
		{name: "a failed first deploy still compares states", failed: &State{Namespace: "data", Name: "x", Package: ledger, Parameters: map[string]string{"VALUE": "b"}, NeverCompleted: true}, target: st(ledger, nil), action: ActionUpdate, plan: "update"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := DecideRollback(tt.failed, tt.target)
			if d.Action != tt.action || d.Plan != tt.plan || !strings.Contains(d.Error, tt.err) {
				t.Fatalf("got %s %q (%s), want %s %q (%s)", d.Action, d.Plan, d.Error, tt.action, tt.plan, tt.err)
			}
			if d.Old != tt.failed || d.New != tt.target {
				t.Error("the decision does not carry the states compared")
			}
		})
	}
}

func TestSameDesired(t *testing.T) {
	ledger := load(t, testenv.FixtureOperator(t, "ledger", "1.0.0"))
	a := &State{Package: ledger, Parameters: map[string]string{"DISK_SIZE": "2Gi"}}
	if !SameDesired(a, &State{Package: ledger, Parameters: map[string]string{"DISK_SIZE": "2Gi"}, File: "other.yaml", Suspend: true}) {
		t.Error("same package and parameters are not the same desired state")
	}
	if SameDesired(a, &State{Package: ledger, Parameters: map[string]string{"DISK_SIZE": "1Gi"}}) || SameDesired(a, &State{Package: edited(ledger), Parameters: a.Parameters}) {
		t.Error("another parameter or package is the same desired state")
	}
}
