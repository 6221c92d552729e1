package planner

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/kudod-dev/kudod/manifests"
)

// load reads a package from ../shared/operators or testdata and fails the test if it is broken.
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

var operators = filepath.Join("..", "..", "shared", "operators")

// edited returns a copy of p whose templates changed in place (same version, another digest).
func edited(p *manifests.Package) *manifests.Package {
	c := *p
	c.Digest = p.Digest + "-edited"
	return &c
}

func TestDecide(t *testing.T) {
	zk331 := load(t, filepath.Join(operators, "zookeeper", "3.4.14-0.3.1"))
	zk333 := load(t, filepath.Join(operators, "zookeeper", "3.6.2-0.3.3"))
	kafka131 := load(t, filepath.Join(operators, "kafka", "2.5.0-1.3.1"))
	kafka132 := load(t, filepath.Join(operators, "kafka", "2.5.1-1.3.2"))
	mysql := load(t, filepath.Join(operators, "mysql", "5.7-0.3.0"))
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
		// New instance.
		{name: "new instance runs deploy", new: st(zk333, nil), action: ActionDeploy, plan: "deploy", reason: "new instance of zookeeper 0.3.3"},
		// Instance removed.
		{name: "removed without cleanup plan deletes objects", old: st(zk333, nil), action: ActionCleanup, plan: "", reason: "no cleanup plan"},
		{name: "removed with cleanup plan runs it", old: st(lc1, nil), action: ActionCleanup, plan: "cleanup", reason: "cleanup plan runs"},
		// Nothing.
		{name: "nothing changed", old: st(zk333, kv{"NODE_COUNT": "3"}), new: st(zk333, kv{"NODE_COUNT": "3"}), action: ActionNone},
		// Parameters without a trigger → update, else deploy.
		{name: "untriggered change without update plan runs deploy", old: st(zk333, nil), new: st(zk333, kv{"MEMORY": "2Gi"}), action: ActionUpdate, plan: "deploy", reason: "parameter MEMORY set: 2Gi"},
		{name: "untriggered change with update plan runs update", old: st(lc1, kv{"REPLICAS": "1"}), new: st(lc1, kv{"REPLICAS": "3"}), action: ActionUpdate, plan: "update", reason: "parameter REPLICAS: 1 → 3"},
		{name: "unset parameter counts as a change", old: st(lc1, kv{"REPLICAS": "3"}), new: st(lc1, nil), action: ActionUpdate, plan: "update", reason: "parameter REPLICAS unset (was 3)"},
		// The trigger of the changed parameter.
		{name: "triggered change runs its plan", old: st(zk333, nil), new: st(zk333, kv{"DISK_SIZE": "10Gi"}), action: ActionUpdate, plan: "not-allowed"},
		{name: "custom trigger on mysql runs backup", old: st(mysql, nil), new: st(mysql, kv{"BACKUP_FILE": "nightly.sql"}), action: ActionUpdate, plan: "backup"},
		{name: "triggered and untriggered change runs the trigger's plan", old: st(zk333, nil), new: st(zk333, kv{"DISK_SIZE": "10Gi", "MEMORY": "2Gi"}), action: ActionUpdate, plan: "not-allowed"},
		{name: "kafka parameter triggers update-instance", old: st(kafka132, nil), new: st(kafka132, kv{"AUTHORIZATION_ENABLED": "true"}), action: ActionUpdate, plan: "update-instance"},
		{name: "two parameters with the same trigger run it once", old: st(kafka132, nil), new: st(kafka132, kv{"MIRROR_MAKER_ENABLED": "true", "MIRROR_MAKER_REPLICA_COUNT": "2"}), action: ActionUpdate, plan: "mirrormaker"},
		// Two different triggers → rejected.
		{name: "two different triggers are rejected", old: st(kafka132, nil), new: st(kafka132, kv{"MIRROR_MAKER_ENABLED": "true", "AUTHORIZATION_ENABLED": "true"}), action: ActionRejected, err: "several plans at once (mirrormaker, update-instance)"},
		{name: "backup and restore triggers together are rejected", old: st(lc1, nil), new: st(lc1, kv{"BACKUP_TARGET": "s3://x", "RESTORE_FROM": "s3://y"}), action: ActionRejected, err: "backup, restore"},
		// Immutable parameters.
		{name: "immutable parameter change is rejected", old: st(lc1, kv{"STORAGE_CLASS": "standard"}), new: st(lc1, kv{"STORAGE_CLASS": "fast"}), action: ActionRejected, err: "parameter STORAGE_CLASS is immutable but was changed from standard to fast"},
		{name: "immutable parameter set to its default is no change", old: st(lc1, nil), new: st(lc1, kv{"STORAGE_CLASS": "standard"}), action: ActionUpdate, plan: "update"},
		// Operator version changed.
		{name: "zookeeper 0.3.1 to 0.3.3 falls back to deploy", old: st(zk331, nil), new: st(zk333, nil), action: ActionUpgrade, plan: "deploy", reason: "operator version 0.3.1 (appVersion 3.4.14) → 0.3.3 (appVersion 3.6.2)"},
		{name: "kafka 1.3.1 to 1.3.2 falls back to deploy", old: st(kafka131, nil), new: st(kafka132, nil), action: ActionUpgrade, plan: "deploy"},
		{name: "upgrade plan runs when the package has one", old: st(lc1, kv{"TIER": ""}), new: st(lc2, kv{"TIER": "gold"}), action: ActionUpgrade, plan: "upgrade"},
		{name: "upgrade with an untriggered change that falls back to deploy is allowed", old: st(zk331, nil), new: st(zk333, kv{"MEMORY": "2Gi"}), action: ActionUpgrade, plan: "deploy", reason: "parameter MEMORY set"},
		{name: "upgrade with a change triggering another plan is rejected", old: st(zk331, nil), new: st(zk333, kv{"DISK_SIZE": "10Gi"}), action: ActionRejected, err: `trigger plan "not-allowed"`},
		{name: "kafka upgrade with an update-instance change is rejected", old: st(kafka131, nil), new: st(kafka132, kv{"AUTHORIZATION_ENABLED": "true"}), action: ActionRejected, err: `trigger plan "update-instance"`},
		{name: "upgrade with an untriggered change and an update plan is rejected (KUDO)", old: st(lc1, nil), new: st(lc2, kv{"REPLICAS": "2", "TIER": "gold"}), action: ActionRejected, err: `trigger plan "update"`},
		{name: "parameters new in the new version do not count as changed", old: st(lc1, nil), new: st(lc2, kv{"ZONE": "b", "TIER": "gold"}), action: ActionUpgrade, plan: "upgrade"},
		{name: "an immutable parameter new in the new version must be explicit", old: st(lc1, nil), new: st(lc2, nil), action: ActionRejected, err: "parameter TIER is new in 2.0.0 and immutable"},
		// Only templates changed.
		{name: "template change without update plan runs deploy", old: st(zk333, nil), new: st(edited(zk333), nil), action: ActionUpdate, plan: "deploy", reason: "changed in place"},
		{name: "template change with update plan runs update", old: st(lc1, nil), new: st(edited(lc1), nil), action: ActionUpdate, plan: "update"},
		{name: "template change with a custom-trigger change is rejected", old: st(lc1, nil), new: st(edited(lc1), kv{"BACKUP_TARGET": "s3://x"}), action: ActionRejected, err: "commit the package change and the parameter change separately"},
		// Sensitive values never appear.
		{name: "sensitive values are masked", old: st(lc1, kv{"DB_PASSWORD": "hunter2"}), new: st(lc1, kv{"DB_PASSWORD": "correct-horse"}), action: ActionUpdate, plan: "update", reason: "parameter DB_PASSWORD changed (value masked)", notInTexts: "hunter2"},
		// Cluster state whose first deploy never completed.
		{name: "unchanged instance whose deploy is running is left alone", old: &State{Namespace: "data", Name: "inst", Package: zk333, NeverCompleted: true}, new: st(zk333, nil), action: ActionNone},
		{name: "changed instance whose deploy never completed deploys again", old: &State{Namespace: "data", Name: "inst", Package: zk333, NeverCompleted: true}, new: st(zk333, kv{"DISK_SIZE": "10Gi"}), action: ActionDeploy, plan: "deploy"},
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
