package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// bareCluster names what TestBareClusterDeploysPackages deploys: a package whose Deployment
// takes a replicas parameter, one whose StatefulSet takes NODE_COUNT and MEMORY, and one more.
type bareCluster struct {
	add                     func(*testenv.GitRepo)
	web, quorum, third      string // operator names
	quorumVersion           string // operator version of quorum
	deployment, statefulSet string // what web and quorum create
}

// TestBareClusterDeploysPackages: on a cluster where kudod has created nothing yet (no CRD, no
// namespaces), hello, quorum 0.2.0 and database deploy to COMPLETE, their objects carry the
// rendered values and `kubectl get instances -A` shows them.
func TestBareClusterDeploysPackages(t *testing.T) {
	bareClusterDeploys(t, bareCluster{
		add: func(r *testenv.GitRepo) {
			r.AddOperator("hello", "1.0.0")
			r.AddOperator("quorum", "1.37.0-0.2.0")
			r.AddOperator("database", "1.0.0")
		},
		web: "hello", quorum: "quorum", third: "database", quorumVersion: "0.2.0",
		deployment: "hello-web", statefulSet: "zk-quorum",
	})
}

// TestCatalogBareClusterDeploysRealOperators does the same with first-operator, zookeeper
// 3.6.2-0.3.3 and mysql.
func TestCatalogBareClusterDeploysRealOperators(t *testing.T) {
	testenv.CatalogDir(t)
	bareClusterDeploys(t, bareCluster{
		add: func(r *testenv.GitRepo) {
			r.AddCatalogOperator("first-operator", "0.2.0")
			r.AddCatalogOperator("zookeeper", "3.6.2-0.3.3")
			r.AddCatalogOperator("mysql", "5.7-0.3.0")
		},
		web: "first-operator", quorum: "zookeeper", third: "mysql", quorumVersion: "0.3.3",
		deployment: "nginx-deployment", statefulSet: "zk-zookeeper",
	})
}

func bareClusterDeploys(t *testing.T, p bareCluster) {
	c := testenv.NewSimulatedCluster(t)
	repo := testenv.NewGitRepo(t)
	p.add(repo)
	rev := repo.Commit("three operators", map[string]string{
		"instances/web/first.yaml": instanceFile("web", "first", p.web, "", "    replicas: 3\n"),
		"instances/data/zk.yaml":   instanceFile("data", "zk", p.quorum, p.quorumVersion, "    NODE_COUNT: 1\n    MEMORY: 256Mi\n"),
		"instances/data/db.yaml":   instanceFile("data", "db", p.third, "", ""),
	})
	startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))

	waitPlan(t, c, "web", "first", "deploy", v1alpha1.StatusComplete, rev, 2*time.Minute)
	waitPlan(t, c, "data", "zk", "deploy", v1alpha1.StatusComplete, rev, 3*time.Minute)
	waitPlan(t, c, "data", "db", "deploy", v1alpha1.StatusComplete, rev, 3*time.Minute)

	ctx := context.Background()
	dep := &appsv1.Deployment{}
	if err := c.Client.Get(ctx, types.NamespacedName{Namespace: "web", Name: p.deployment}, dep); err != nil {
		t.Fatal(err)
	}
	if *dep.Spec.Replicas != 3 || dep.Status.AvailableReplicas != 3 {
		t.Errorf("%s Deployment: replicas %d, available %d", p.web, *dep.Spec.Replicas, dep.Status.AvailableReplicas)
	}
	sts := &appsv1.StatefulSet{}
	if err := c.Client.Get(ctx, types.NamespacedName{Namespace: "data", Name: p.statefulSet}, sts); err != nil {
		t.Fatal(err)
	}
	if *sts.Spec.Replicas != 1 || sts.Status.ReadyReplicas != 1 {
		t.Errorf("%s StatefulSet: replicas %d, ready %d", p.quorum, *sts.Spec.Replicas, sts.Status.ReadyReplicas)
	}
	if got := sts.Spec.Template.Spec.Containers[0].Resources.Requests.Memory().String(); got != "256Mi" {
		t.Errorf("%s memory request %s, want 256Mi", p.quorum, got)
	}
	ns := &corev1.Namespace{}
	if err := c.Client.Get(ctx, types.NamespacedName{Name: "data"}, ns); err != nil || ns.Labels[v1alpha1.LabelManagedBy] != "kudod" {
		t.Errorf("namespace data not created and labelled by kudod: %v %v", err, ns.Labels)
	}
	out, err := c.Kubectl(ctx, "get", "instances", "-A")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"OPERATOR", "VERSION", "PLAN", "STATUS", "REVISION", p.web, p.quorum, p.third, "COMPLETE", rev[:7]} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl get instances -A lacks %q:\n%s", want, out)
		}
	}
}
