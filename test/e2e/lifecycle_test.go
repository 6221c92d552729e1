package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
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

// TestCommitsRunTheRightPlans: a parameter change runs the plan it triggers and only that
// plan; zookeeper 3.4.14-0.3.1 → 3.6.2-0.3.3 runs the upgrade fallback (deploy); an object
// dropped from a template is pruned; removing an instance deletes every object it made.
func TestCommitsRunTheRightPlans(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	repo := testenv.NewGitRepo(t)
	repo.AddOperator("zookeeper", "3.4.14-0.3.1")
	repo.AddOperator("zookeeper", "3.6.2-0.3.3")
	repo.AddOperator("mysql", "5.7-0.3.0")
	files := prunerPackage("kept.yaml, dropped.yaml", map[string]string{"kept.yaml": cmTemplate("kept"), "dropped.yaml": cmTemplate("dropped")})
	files["instances/zk.yaml"] = instanceFile(ns, "zk", "zookeeper", "0.3.1", "    NODE_COUNT: 1\n")
	files["instances/db.yaml"] = instanceFile(ns, "db", "mysql", "", "")
	files["instances/p.yaml"] = instanceFile(ns, "p", "pruner", "", "")
	first := repo.Commit("deploy", files)
	startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))
	for _, name := range []string{"zk", "db", "p"} {
		waitPlan(t, c, ns, name, "deploy", v1alpha1.StatusComplete, first, 3*time.Minute)
	}

	// mysql's BACKUP_FILE triggers its backup plan, and nothing else runs.
	backup := repo.Commit("backup", map[string]string{"instances/db.yaml": instanceFile(ns, "db", "mysql", "", "    BACKUP_FILE: nightly.sql\n")})
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

	// Upgrade: no upgrade or update plan in zookeeper, so deploy runs with the new version.
	up := repo.Commit("upgrade zookeeper", map[string]string{"instances/zk.yaml": instanceFile(ns, "zk", "zookeeper", "0.3.3", "    NODE_COUNT: 1\n")})
	zk := waitPlan(t, c, ns, "zk", "deploy", v1alpha1.StatusComplete, up, 3*time.Minute)
	if zk.Status.Applied == nil || zk.Status.Applied.OperatorVersion != "0.3.3" {
		t.Errorf("applied state after the upgrade: %+v", zk.Status.Applied)
	}
	sts := &appsv1.StatefulSet{}
	if !exists(t, c, sts, ns, "zk-zookeeper") || !strings.Contains(sts.Spec.Template.Spec.Containers[0].Image, "3.6.2") {
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

	// Removing mysql deletes every object it made and then its Instance.
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
