package e2e

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// prunerPackage is a small package whose templates a test edits in place.
func prunerPackage(resources string, templates map[string]string) map[string]string {
	files := map[string]string{
		"operators/pruner/1.0.0/operator.yaml": `apiVersion: kudo.dev/v1beta1
name: pruner
operatorVersion: 1.0.0
kubernetesVersion: 1.20.0
tasks:
  - name: app
    kind: Apply
    spec:
      resources: [` + resources + `]
plans:
  deploy:
    phases:
      - name: main
        steps:
          - name: app
            tasks: [app]
`,
		"operators/pruner/1.0.0/params.yaml": "parameters: []\n",
	}
	for k, v := range templates {
		files["operators/pruner/1.0.0/templates/"+k] = v
	}
	return files
}

func cmTemplate(name string) string {
	return "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Name }}-" + name + "\ndata:\n  k: v\n"
}

func exists(t testing.TB, c *testenv.Cluster, obj client.Object, ns, name string) bool {
	t.Helper()
	err := c.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, obj)
	if err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	return err == nil
}

// rightPlans names what TestCommitsRunTheRightPlans deploys: a quorum package in two versions
// without upgrade or update plan, whose StatefulSet's image follows the app version, and a
// database whose BACKUP_FILE triggers a backup plan making <instance>-backup-pv.
type rightPlans struct {
	add                   func(*testenv.GitRepo)
	quorum, database      string // operator names
	oldVersion, upgradeTo string // operator versions of quorum
	newAppVersion         string // in the image after the upgrade
	statefulSet           string // quorum's, for the instance zk
	cleanupJob            string // a Job the database's cleanup plan makes, if it has one
}

// TestCommitsRunTheRightPlans: a parameter change runs the plan it triggers and only that
// plan; quorum 0.1.0 → 0.2.0 runs the upgrade fallback (deploy); an object dropped from a
// template is pruned; removing an instance runs its cleanup plan and deletes every object it
// made.
func TestCommitsRunTheRightPlans(t *testing.T) {
	commitsRunTheRightPlans(t, rightPlans{
		add: func(r *testenv.GitRepo) {
			r.AddOperator("quorum", "1.36.1-0.1.0")
			r.AddOperator("quorum", "1.37.0-0.2.0")
			r.AddOperator("database", "1.0.0")
		},
		quorum: "quorum", database: "database", oldVersion: "0.1.0", upgradeTo: "0.2.0", newAppVersion: "1.37.0",
		statefulSet: "zk-quorum", cleanupJob: "db-farewell",
	})
}

// TestCatalogCommitsRunTheRightPlans does the same with zookeeper 3.4.14-0.3.1 → 3.6.2-0.3.3
// and mysql (which has no cleanup plan).
func TestCatalogCommitsRunTheRightPlans(t *testing.T) {
	commitsRunTheRightPlans(t, rightPlans{
		add: func(r *testenv.GitRepo) {
			r.AddCatalogOperator("zookeeper", "3.4.14-0.3.1")
			r.AddCatalogOperator("zookeeper", "3.6.2-0.3.3")
			r.AddCatalogOperator("mysql", "5.7-0.3.0")
		},
		quorum: "zookeeper", database: "mysql", oldVersion: "0.3.1", upgradeTo: "0.3.3", newAppVersion: "3.6.2",
		statefulSet: "zk-zookeeper",
	})
}

func commitsRunTheRightPlans(t *testing.T, p rightPlans) {
	repo := testenv.NewGitRepo(t)
	p.add(repo)
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	files := prunerPackage("kept.yaml, dropped.yaml", map[string]string{"kept.yaml": cmTemplate("kept"), "dropped.yaml": cmTemplate("dropped")})
	files["instances/zk.yaml"] = instanceFile(ns, "zk", p.quorum, p.oldVersion, "    NODE_COUNT: 1\n")
	files["instances/db.yaml"] = instanceFile(ns, "db", p.database, "", "")
	files["instances/p.yaml"] = instanceFile(ns, "p", "pruner", "", "")
	first := repo.Commit("deploy", files)
	startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))
	for _, name := range []string{"zk", "db", "p"} {
		waitPlan(t, c, ns, name, "deploy", v1alpha1.StatusComplete, first, 3*time.Minute)
	}

	// The database's BACKUP_FILE triggers its backup plan, and nothing else runs.
	backup := repo.Commit("backup", map[string]string{"instances/db.yaml": instanceFile(ns, "db", p.database, "", "    BACKUP_FILE: nightly.sql\n")})
	db := waitPlan(t, c, ns, "db", "backup", v1alpha1.StatusComplete, backup, 2*time.Minute)
	for _, name := range []string{"zk", "p"} {
		if in := getInstance(c, ns, name); in.Status.LastPlan.Revision != first {
			t.Errorf("%s ran a plan for a commit that does not change it (%s at %.7s)", name, in.Status.LastPlan.Name, in.Status.LastPlan.Revision)
		}
	}
	if deploy := planStatus(db, "deploy"); deploy == nil || deploy.Revision != first {
		t.Errorf("the backup commit re-ran deploy: %+v", deploy)
	}
	if !exists(t, c, &corev1.PersistentVolumeClaim{}, ns, "db-backup-pv") {
		t.Error("the backup plan did not create its volume claim")
	}

	// Upgrade: no upgrade or update plan in the package, so deploy runs with the new version.
	up := repo.Commit("upgrade "+p.quorum, map[string]string{"instances/zk.yaml": instanceFile(ns, "zk", p.quorum, p.upgradeTo, "    NODE_COUNT: 1\n")})
	zk := waitPlan(t, c, ns, "zk", "deploy", v1alpha1.StatusComplete, up, 3*time.Minute)
	if zk.Status.Applied == nil || zk.Status.Applied.OperatorVersion != p.upgradeTo {
		t.Errorf("applied state after the upgrade: %+v", zk.Status.Applied)
	}
	sts := &appsv1.StatefulSet{}
	if !exists(t, c, sts, ns, p.statefulSet) || !strings.Contains(sts.Spec.Template.Spec.Containers[0].Image, p.newAppVersion) {
		t.Errorf("zookeeper image after the upgrade: %s", sts.Spec.Template.Spec.Containers[0].Image)
	}

	// A template dropped from the package: its object is pruned once the plan completes.
	edit := prunerPackage("kept.yaml", map[string]string{"kept.yaml": cmTemplate("kept"), "dropped.yaml": ""})
	dropped := repo.Commit("drop a template", edit)
	waitPlan(t, c, ns, "p", "deploy", v1alpha1.StatusComplete, dropped, 2*time.Minute)
	eventually(t, 30*time.Second, "the dropped object to be pruned", func() (bool, string) {
		return !exists(t, c, &corev1.ConfigMap{}, ns, "p-dropped"), "p-dropped still exists"
	})
	if !exists(t, c, &corev1.ConfigMap{}, ns, "p-kept") {
		t.Fatal("pruning deleted an object still rendered")
	}

	// Removing the database runs its cleanup plan, if any, then deletes every object it made
	// and its Instance.
	inv := getInstance(c, ns, "db").Status.Inventory
	if len(inv) < 3 {
		t.Fatalf("db inventory %v", inv)
	}
	repo.Commit("remove db", map[string]string{"instances/db.yaml": ""})
	eventually(t, 2*time.Minute, "db and its objects to be gone", func() (bool, string) {
		if getInstance(c, ns, "db") != nil {
			return false, "instance still there"
		}
		for _, id := range []struct {
			obj  client.Object
			name string
		}{{&appsv1.Deployment{}, "db"}, {&corev1.Service{}, "db-svc"}, {&corev1.PersistentVolumeClaim{}, "db-pv"}, {&corev1.PersistentVolumeClaim{}, "db-backup-pv"}} {
			if exists(t, c, id.obj, ns, id.name) {
				return false, id.name + " still exists"
			}
		}
		return true, ""
	})
	if getInstance(c, ns, "zk") == nil || !exists(t, c, &corev1.ConfigMap{}, ns, "p-kept") {
		t.Fatal("removing db touched other instances")
	}
	if p.cleanupJob != "" {
		if !slices.ContainsFunc(c.AuditEvents(t), func(e testenv.AuditEvent) bool {
			return e.ObjectRef != nil && e.ObjectRef.Resource == "jobs" && e.ObjectRef.Namespace == ns && e.ObjectRef.Name == p.cleanupJob &&
				e.Verb == "patch" && !strings.Contains(e.RequestURI, "dryRun")
		}) {
			t.Errorf("the cleanup plan did not run: no Job %s was applied", p.cleanupJob)
		}
		if exists(t, c, &batchv1.Job{}, ns, p.cleanupJob) {
			t.Errorf("the cleanup plan's Job %s is left", p.cleanupJob)
		}
	}
}

func planStatus(in *v1alpha1.Instance, name string) *v1alpha1.PlanStatus {
	for i := range in.Status.Plans {
		if in.Status.Plans[i].Name == name {
			return &in.Status.Plans[i]
		}
	}
	return nil
}

func configMapObj() *corev1.ConfigMap { return &corev1.ConfigMap{} }
