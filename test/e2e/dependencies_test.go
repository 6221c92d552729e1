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

// dependencies names what TestParentDeploysItsDependenciesInOrder deploys: a parent package
// whose KudoOperator tasks create children, the files its children's Pipe tasks read on the
// host, and the parameters each child gets from its parameter file in namespace ns ("" for
// any value).
type dependencies struct {
	add       func(*testenv.GitRepo)
	hostFiles map[string]string
	parent    string
	children  []string // instance names, in deploy order
	params    func(ns string) map[string]map[string]string
}

// TestParentDeploysItsDependenciesInOrder: stack's KudoOperator tasks create its zk (quorum)
// and broker children from packages of the same repository, one after the other, each child's
// deploy completing before the next child exists; then its own objects.
func TestParentDeploysItsDependenciesInOrder(t *testing.T) {
	dependenciesInOrder(t, dependencies{
		add: func(r *testenv.GitRepo) {
			r.AddOperator("quorum", "1.36.1-0.1.0")
			r.AddOperator("broker", "1.0.0")
			r.AddOperator("stack", "1.0.0")
		},
		// broker's deploy pipes a TLS key and certificate out of a pod (its Pipe task).
		hostFiles: map[string]string{"/tmp/kudod-broker-tls.key": "key\n", "/tmp/kudod-broker-tls.crt": "crt\n"},
		parent:    "stack",
		children:  []string{"zk", "broker"},
		// stack's parameter files are templates.
		params: func(ns string) map[string]map[string]string {
			return map[string]map[string]string{"broker": {"ZOOKEEPER_URI": "zk-cs." + ns + ".svc:2181", "BROKER_COUNT": "1"}, "zk": {"MEMORY": "256Mi"}}
		},
	})
}

// TestCatalogFlinkDemoDeploysItsDependenciesInOrder does the same with flink-demo and its
// zookeeper, kafka and flink children.
func TestCatalogFlinkDemoDeploysItsDependenciesInOrder(t *testing.T) {
	dependenciesInOrder(t, dependencies{
		add: func(r *testenv.GitRepo) {
			r.AddCatalogOperator("zookeeper", "3.4.14-0.3.1")
			r.AddCatalogOperator("kafka", "2.5.0-1.3.1")
			r.AddCatalogOperator("flink", "1.7.2-0.2.1")
			r.AddCatalogOperator("flink-demo", "0.1.6")
		},
		// Kafka's deploy pipes a TLS key and certificate out of a pod (its Pipe task).
		hostFiles: map[string]string{"/tmp/tls.key": "key\n", "/tmp/tls.crt": "crt\n"},
		parent:    "flink-demo",
		children:  []string{"zk", "kafka", "flink"},
		params: func(string) map[string]map[string]string {
			return map[string]map[string]string{"kafka": {"ZOOKEEPER_URI": ""}, "zk": {"MEMORY": "256Mi"}}
		},
	})
}

func dependenciesInOrder(t *testing.T, d dependencies) {
	repo := testenv.NewGitRepo(t)
	d.add(repo)
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	hostFiles(t, d.hostFiles)
	rev := repo.Commit(d.parent, map[string]string{"instances/demo.yaml": instanceFile(ns, "demo", d.parent, "", "")})
	startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))

	demo := waitPlan(t, c, ns, "demo", "deploy", v1alpha1.StatusComplete, rev, 6*time.Minute)
	children := map[string]*v1alpha1.Instance{}
	for _, name := range d.children {
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
	for i := 1; i < len(d.children); i++ {
		prev, next := children[d.children[i-1]], children[d.children[i]]
		if next.CreationTimestamp.Time.Before(prev.Status.LastPlan.FinishTime.Time.Truncate(time.Second)) {
			t.Errorf("%s was created at %s, before %s's deploy finished at %s", next.Name, next.CreationTimestamp, prev.Name, prev.Status.LastPlan.FinishTime)
		}
	}
	for child, params := range d.params(ns) {
		got := children[child].Spec.Parameters
		for name, want := range params {
			if v, ok := got[name]; !ok || v == "" || (want != "" && v != want) {
				t.Errorf("child %s did not get %s=%q from its parameter file: %v", child, name, want, got)
			}
		}
	}
}
