package planner

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kudod-dev/kudod/manifests"
	"github.com/kudod-dev/kudod/test/testenv"
)

// load reads a package and fails the test if it is broken.
func load(t *testing.T, dir string) *manifests.Package {
	t.Helper()
	p, err := manifests.Load(os.DirFS(dir), ".")
	if err != nil {
		t.Fatalf("load %s: %v", dir, err)
	}
	if fs := manifests.Verify(p); fs.HasErrors() {
		t.Fatalf("verify %s: %v", dir, fs.Errors())
	}
	return p
}

// edited returns a copy of p whose templates changed in place (same version, another digest).
func edited(p *manifests.Package) *manifests.Package {
	c := *p
	c.Digest = p.Digest + "-edited"
	return &c
}

// decidePackages are what TestDecide's cases run on besides planner's testdata: a quorum in
// two versions (DISK_SIZE triggers not-allowed; no update plan), a broker in two versions (an
// update-instance plan, a mirrormaker plan two parameters trigger; no update plan) and a
// database whose BACKUP_FILE triggers its backup plan.
type decidePackages struct {
	quorumOld, quorumNew, brokerOld, brokerNew, database *manifests.Package
}

func TestDecide(t *testing.T) {
	decide(t, decidePackages{
		quorumOld: load(t, testenv.FixtureOperator(t, "quorum", "1.36.1-0.1.0")),
		quorumNew: load(t, testenv.FixtureOperator(t, "quorum", "1.37.0-0.2.0")),
		brokerOld: load(t, testenv.FixtureOperator(t, "broker", "1.0.0")),
		brokerNew: load(t, testenv.FixtureOperator(t, "broker", "1.1.0")),
		database:  load(t, testenv.FixtureOperator(t, "database", "1.0.0")),
	})
}

// TestCatalogDecide runs TestDecide's cases on zookeeper, kafka and mysql.
func TestCatalogDecide(t *testing.T) {
	decide(t, decidePackages{
		quorumOld: load(t, testenv.CatalogOperator(t, "zookeeper", "3.4.14-0.3.1")),
		quorumNew: load(t, testenv.CatalogOperator(t, "zookeeper", "3.6.2-0.3.3")),
		brokerOld: load(t, testenv.CatalogOperator(t, "kafka", "2.5.0-1.3.1")),
		brokerNew: load(t, testenv.CatalogOperator(t, "kafka", "2.5.1-1.3.2")),
		database:  load(t, testenv.CatalogOperator(t, "mysql", "5.7-0.3.0")),
	})
}

func decide(t *testing.T, pk decidePackages) {
	quorumOld, quorumNew, brokerOld, brokerNew, database := pk.quorumOld, pk.quorumNew, pk.brokerOld, pk.brokerNew, pk.database
	lc1 := load(t, filepath.Join("testdata", "lifecycle", "1.0.0"))
	lc2 := load(t, filepath.Join("testdata", "lifecycle", "2.0.0"))

	st := func(p *manifests.Package, params map[string]string) *State {
		return &State{Namespace: "data", Name: "inst", Package: p, Parameters: params}
	}
	type kv = map[string]string
	// The groups follow the table and the rules of docs/design.md, Plan selection.
	cases := []struct {
		name       string
		old, new   *State
		action     Action
		plan       string
		reason     string // substring of a reason
		err        string // substring of the rejection
		notInTexts string // must appear in no reason or error
	}{
		// new instance.
		{name: "new instance runs deploy", new: st(quorumNew, nil), action: ActionDeploy, plan: "deploy", reason: "new instance of " + quorumNew.Name + " " + quorumNew.OperatorVersion},
		// instance removed.
		{name: "removed without cleanup plan deletes objects", old: st(quorumNew, nil), action: ActionCleanup, plan: "", reason: "no cleanup plan"},
		{name: "removed with cleanup plan runs it", old: st(lc1, nil), action: ActionCleanup, plan: "cleanup", reason: "cleanup plan runs"},
		// nothing.
		{name: "nothing changed", old: st(quorumNew, kv{"NODE_COUNT": "3"}), new: st(quorumNew, kv{"NODE_COUNT": "3"}), action: ActionNone},
		// parameters without trigger → update, else deploy.
		{name: "untriggered change without update plan runs deploy", old: st(quorumNew, nil), new: st(quorumNew, kv{"MEMORY": "2Gi"}), action: ActionUpdate, plan: "deploy", reason: "parameter MEMORY set: 2Gi"},
		{name: "untriggered change with update plan runs update", old: st(lc1, kv{"REPLICAS": "1"}), new: st(lc1, kv{"REPLICAS": "3"}), action: ActionUpdate, plan: "update", reason: "parameter REPLICAS: 1 → 3"},
		{name: "unset parameter counts as a change", old: st(lc1, kv{"REPLICAS": "3"}), new: st(lc1, nil), action: ActionUpdate, plan: "update", reason: "parameter REPLICAS unset (was 3)"},
		// the trigger of the changed parameter.
		{name: "triggered change runs its plan", old: st(quorumNew, nil), new: st(quorumNew, kv{"DISK_SIZE": "10Gi"}), action: ActionUpdate, plan: "not-allowed"},
		{name: "custom trigger runs backup", old: st(database, nil), new: st(database, kv{"BACKUP_FILE": "nightly.sql"}), action: ActionUpdate, plan: "backup"},
		{name: "triggered and untriggered change runs the trigger's plan", old: st(quorumNew, nil), new: st(quorumNew, kv{"DISK_SIZE": "10Gi", "MEMORY": "2Gi"}), action: ActionUpdate, plan: "not-allowed"},
		{name: "parameter triggers update-instance", old: st(brokerNew, nil), new: st(brokerNew, kv{"AUTHORIZATION_ENABLED": "true"}), action: ActionUpdate, plan: "update-instance"},
		{name: "two parameters with the same trigger run it once", old: st(brokerNew, nil), new: st(brokerNew, kv{"MIRROR_MAKER_ENABLED": "true", "MIRROR_MAKER_REPLICA_COUNT": "2"}), action: ActionUpdate, plan: "mirrormaker"},
		// two different triggers → rejected.
		{name: "two different triggers are rejected", old: st(brokerNew, nil), new: st(brokerNew, kv{"MIRROR_MAKER_ENABLED": "true", "AUTHORIZATION_ENABLED": "true"}), action: ActionRejected, err: "several plans at once (mirrormaker, update-instance)"},
		{name: "backup and restore triggers together are rejected", old: st(lc1, nil), new: st(lc1, kv{"BACKUP_TARGET": "s3://x", "RESTORE_FROM": "s3://y"}), action: ActionRejected, err: "backup, restore"},
		// Immutable parameters.
		{name: "immutable parameter change is rejected", old: st(lc1, kv{"STORAGE_CLASS": "standard"}), new: st(lc1, kv{"STORAGE_CLASS": "fast"}), action: ActionRejected, err: "parameter STORAGE_CLASS is immutable but was changed from standard to fast"},
		{name: "immutable parameter set to its default is no change", old: st(lc1, nil), new: st(lc1, kv{"STORAGE_CLASS": "standard"}), action: ActionUpdate, plan: "update"},
		// operator version changed.
		{name: "upgrade without upgrade or update plan falls back to deploy", old: st(quorumOld, nil), new: st(quorumNew, nil), action: ActionUpgrade, plan: "deploy", reason: fmt.Sprintf("operator version %s (appVersion %s) → %s (appVersion %s)", quorumOld.OperatorVersion, quorumOld.AppVersion, quorumNew.OperatorVersion, quorumNew.AppVersion)},
		{name: "upgrade with update-instance but no update plan falls back to deploy", old: st(brokerOld, nil), new: st(brokerNew, nil), action: ActionUpgrade, plan: "deploy"},
		{name: "upgrade plan runs when the package has one", old: st(lc1, kv{"TIER": ""}), new: st(lc2, kv{"TIER": "gold"}), action: ActionUpgrade, plan: "upgrade"},
		{name: "upgrade with an untriggered change that falls back to deploy is allowed", old: st(quorumOld, nil), new: st(quorumNew, kv{"MEMORY": "2Gi"}), action: ActionUpgrade, plan: "deploy", reason: "parameter MEMORY set"},
		{name: "upgrade with a change triggering another plan is rejected", old: st(quorumOld, nil), new: st(quorumNew, kv{"DISK_SIZE": "10Gi"}), action: ActionRejected, err: `trigger plan "not-allowed"`},
		{name: "upgrade with an update-instance change is rejected", old: st(brokerOld, nil), new: st(brokerNew, kv{"AUTHORIZATION_ENABLED": "true"}), action: ActionRejected, err: `trigger plan "update-instance"`},
		{name: "upgrade with an untriggered change and an update plan is rejected (KUDO)", old: st(lc1, nil), new: st(lc2, kv{"REPLICAS": "2", "TIER": "gold"}), action: ActionRejected, err: `trigger plan "update"`},
		{name: "parameters new in the new version do not count as changed", old: st(lc1, nil), new: st(lc2, kv{"ZONE": "b", "TIER": "gold"}), action: ActionUpgrade, plan: "upgrade"},
		{name: "an immutable parameter new in the new version must be explicit", old: st(lc1, nil), new: st(lc2, nil), action: ActionRejected, err: "parameter TIER is new in 2.0.0 and immutable"},
		// only templates changed.
		{name: "template change without update plan runs deploy", old: st(quorumNew, nil), new: st(edited(quorumNew), nil), action: ActionUpdate, plan: "deploy", reason: "changed in place"},
		{name: "template change with update plan runs update", old: st(lc1, nil), new: st(edited(lc1), nil), action: ActionUpdate, plan: "update"},
		{name: "template change with a custom-trigger change is rejected", old: st(lc1, nil), new: st(edited(lc1), kv{"BACKUP_TARGET": "s3://x"}), action: ActionRejected, err: "commit the package change and the parameter change separately"},
		// Sensitive values never appear.
		{name: "sensitive values are masked", old: st(lc1, kv{"DB_PASSWORD": "hunter2"}), new: st(lc1, kv{"DB_PASSWORD": "correct-horse"}), action: ActionUpdate, plan: "update", reason: "parameter DB_PASSWORD: (sensitive value changed)", notInTexts: "hunter2"},
		// Cluster state whose first deploy never completed.
		{name: "unchanged instance whose deploy is running is left alone", old: &State{Namespace: "data", Name: "inst", Package: quorumNew, NeverCompleted: true}, new: st(quorumNew, nil), action: ActionNone},
		{name: "changed instance whose deploy never completed deploys again", old: &State{Namespace: "data", Name: "inst", Package: quorumNew, NeverCompleted: true}, new: st(quorumNew, kv{"DISK_SIZE": "10Gi"}), action: ActionDeploy, plan: "deploy"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d := Decide(c.old, c.new)
			if d.Action != c.action || d.Plan != c.plan {
				t.Fatalf("got action %s plan %q (reasons %q, error %q), want %s %q", d.Action, d.Plan, d.Reasons, d.Error, c.action, c.plan)
			}
			texts := strings.Join(append(append([]string{}, d.Reasons...), d.Error), "\n")
			if c.reason != "" && !strings.Contains(strings.Join(d.Reasons, "\n"), c.reason) {
				t.Errorf("reasons %q do not mention %q", d.Reasons, c.reason)
			}
			if c.err != "" && !strings.Contains(d.Error, c.err) {
				t.Errorf("error %q does not mention %q", d.Error, c.err)
			}
			if c.action == ActionRejected && d.Error == "" {
				t.Errorf("rejected without an error")
			}
			if c.notInTexts != "" && strings.Contains(texts, c.notInTexts) {
				t.Errorf("%q leaked into %q", c.notInTexts, texts)
			}
		})
	}
}
