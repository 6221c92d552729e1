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

// TestBareClusterDeploysRealOperators: on a cluster where kudod has created nothing yet (no
// CRD, no namespaces), first-operator, zookeeper 3.6.2-0.3.3 and mysql deploy to COMPLETE,
// their objects carry the rendered values and `kubectl get instances -A` shows them.
func TestBareClusterDeploysRealOperators(t *testing.T) {
	c := testenv.NewSimulatedCluster(t)
	repo := testenv.NewGitRepo(t)
	repo.AddOperator("first-operator", "0.2.0")
	repo.AddOperator("zookeeper", "3.6.2-0.3.3")
	repo.AddOperator("mysql", "5.7-0.3.0")
	rev := repo.Commit("three operators", map[string]string{
		"instances/web/first.yaml": instanceFile("web", "first", "first-operator", "", "    replicas: 3\n"),
		"instances/data/zk.yaml":   instanceFile("data", "zk", "zookeeper", "0.3.3", "    NODE_COUNT: 1\n    MEMORY: 256Mi\n"),
		"instances/data/db.yaml":   instanceFile("data", "db", "mysql", "", ""),
	})
	startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))

	waitPlan(t, c, "web", "first", "deploy", v1alpha1.StatusComplete, rev, 2*time.Minute)
	waitPlan(t, c, "data", "zk", "deploy", v1alpha1.StatusComplete, rev, 3*time.Minute)
	waitPlan(t, c, "data", "db", "deploy", v1alpha1.StatusComplete, rev, 3*time.Minute)

	ctx := context.Background()
	dep := &appsv1.Deployment{}
	if err := c.Client.Get(ctx, types.NamespacedName{Namespace: "web", Name: "nginx-deployment"}, dep); err != nil {
		t.Fatal(err)
	}
	if *dep.Spec.Replicas != 3 || dep.Status.AvailableReplicas != 3 {
		t.Errorf("first-operator Deployment: replicas %d, available %d", *dep.Spec.Replicas, dep.Status.AvailableReplicas)
	}
	sts := &appsv1.StatefulSet{}
	if err := c.Client.Get(ctx, types.NamespacedName{Namespace: "data", Name: "zk-zookeeper"}, sts); err != nil {
		t.Fatal(err)
	}
	if *sts.Spec.Replicas != 1 || sts.Status.ReadyReplicas != 1 {
		t.Errorf("zookeeper StatefulSet: replicas %d, ready %d", *sts.Spec.Replicas, sts.Status.ReadyReplicas)
	}
	if got := sts.Spec.Template.Spec.Containers[0].Resources.Requests.Memory().String(); got != "256Mi" {
		t.Errorf("zookeeper memory request %s, want 256Mi", got)
	}
	ns := &corev1.Namespace{}
	if err := c.Client.Get(ctx, types.NamespacedName{Name: "data"}, ns); err != nil || ns.Labels[v1alpha1.LabelManagedBy] != "kudod" {
		t.Errorf("namespace data not created and labelled by kudod: %v %v", err, ns.Labels)
	}
	out, err := c.Kubectl(ctx, "get", "instances", "-A")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"OPERATOR", "VERSION", "PLAN", "STATUS", "REVISION", "first-operator", "zookeeper", "mysql", "COMPLETE", rev[:7]} {
		if !strings.Contains(out, want) {
			t.Errorf("kubectl get instances -A lacks %q:\n%s", want, out)
		}
	}
}
