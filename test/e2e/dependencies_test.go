package e2e

import (
	"os"
	"testing"
	"time"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// hostFiles places files on the host for the duration of a test. The simulated cluster's
// kwok runs `exec` commands on the host, so a Pipe task reads what the pod "wrote" here.
func hostFiles(t *testing.T, files map[string]string) {
	t.Helper()
	for path, content := range files {
		if _, err := os.Stat(path); err == nil {
			continue // left by someone else: keep theirs
		}
		if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Remove(path) })
	}
}

// TestFlinkDemoDeploysItsDependenciesInOrder: flink-demo's KudoOperator tasks create its
// zookeeper, kafka and flink children from packages of the same repository, one after the
// other, each child's deploy completing before the next child exists; then its own objects.
func TestFlinkDemoDeploysItsDependenciesInOrder(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	// Kafka's deploy pipes a TLS key and certificate out of a pod (its Pipe task).
	hostFiles(t, map[string]string{"/tmp/tls.key": "key\n", "/tmp/tls.crt": "crt\n"})
	repo := testenv.NewGitRepo(t)
	repo.AddOperator("zookeeper", "3.4.14-0.3.1")
	repo.AddOperator("kafka", "2.5.0-1.3.1")
	repo.AddOperator("flink", "1.7.2-0.2.1")
	repo.AddOperator("flink-demo", "0.1.6")
	rev := repo.Commit("flink demo", map[string]string{"instances/demo.yaml": instanceFile(ns, "demo", "flink-demo", "", "")})
	startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))

	demo := waitPlan(t, c, ns, "demo", "deploy", v1alpha1.StatusComplete, rev, 6*time.Minute)
	children := map[string]*v1alpha1.Instance{}
	for _, name := range []string{"zk", "kafka", "flink"} {
		in := getInstance(c, ns, name)
		if in == nil {
			t.Fatalf("child instance %s missing", name)
		}
		if in.Labels[v1alpha1.LabelParent] != "demo" || len(in.OwnerReferences) != 1 || in.OwnerReferences[0].UID != demo.UID {
			t.Errorf("child %s not owned by demo: labels %v owners %v", name, in.Labels, in.OwnerReferences)
		}
		if in.Status.LastPlan == nil || in.Status.LastPlan.Name != "deploy" || in.Status.LastPlan.Status != v1alpha1.StatusComplete {
			t.Fatalf("child %s: last plan %+v", name, in.Status.LastPlan)
		}
		children[name] = in
	}
	// Each child's deploy finished before the next child was created.
	order := []string{"zk", "kafka", "flink"}
	for i := 1; i < len(order); i++ {
		prev, next := children[order[i-1]], children[order[i]]
		if next.CreationTimestamp.Time.Before(prev.Status.LastPlan.FinishTime.Time.Truncate(time.Second)) {
			t.Errorf("%s was created at %s, before %s's deploy finished at %s", order[i], next.CreationTimestamp, order[i-1], prev.Status.LastPlan.FinishTime)
		}
	}
	if children["kafka"].Spec.Parameters["ZOOKEEPER_URI"] == "" || children["zk"].Spec.Parameters["MEMORY"] != "256Mi" {
		t.Errorf("children did not get their parameter files: kafka %v, zk %v", children["kafka"].Spec.Parameters, children["zk"].Spec.Parameters)
	}
}
