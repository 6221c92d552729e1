package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// webPackage is a Deployment whose pods only schedule on nodes labelled zone=ZONE when ZONE
// is set: the simulated cluster's node has no zone, so such a Deployment never becomes ready.
func webPackage() map[string]string {
	return map[string]string{
		"operators/web/1.0.0/operator.yaml": `apiVersion: kudo.dev/v1beta1
name: web
operatorVersion: 1.0.0
kubernetesVersion: 1.20.0
tasks:
  - name: config
    kind: Apply
    spec:
      resources: [config.yaml]
  - name: app
    kind: Apply
    spec:
      resources: [deployment.yaml]
  - name: bad
    kind: Apply
    spec:
      resources: [config2.yaml, service.yaml]
plans:
  deploy:
    phases:
      - name: main
        steps:
          - name: config
            tasks: [config]
          - name: app
            tasks: [app]
  broken:
    phases:
      - name: main
        steps:
          - name: bad
            tasks: [bad]
`,
		"operators/web/1.0.0/params.yaml": `parameters:
  - name: ZONE
    default: ""
    required: false
  - name: PORT
    default: "80"
    trigger: broken
`,
		"operators/web/1.0.0/templates/config.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Name }}-config\ndata:\n  zone: {{ .Params.ZONE | quote }}\n",
		"operators/web/1.0.0/templates/config2.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Name }}-config2\ndata:\n  port: {{ .Params.PORT | quote }}\n",
		"operators/web/1.0.0/templates/service.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: {{ .Name }}\nspec:\n  selector: {app: {{ .Name }}}\n  ports:\n    - port: {{ .Params.PORT }}\n",
		"operators/web/1.0.0/templates/deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Name }}
spec:
  replicas: 1
  selector:
    matchLabels: {app: {{ .Name }}}
  template:
    metadata:
      labels: {app: {{ .Name }}}
    spec:
      {{- if .Params.ZONE }}
      nodeSelector: {zone: {{ .Params.ZONE | quote }}}
      {{- end }}
      containers:
        - name: web
          image: nginx
`,
	}
}

func withStepTimeout(doc, timeout string) string {
	return strings.Replace(doc, "spec:\n", "spec:\n  stepTimeout: "+timeout+"\n", 1)
}

// TestStepTimeoutFailsAndTheNextCommitRecovers: a step whose Deployment never becomes ready
// fails at its timeout with FATAL_ERROR naming the Deployment; fixing it in git recovers.
func TestStepTimeoutFailsAndTheNextCommitRecovers(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	repo := testenv.NewGitRepo(t)
	files := webPackage()
	files["instances/web.yaml"] = withStepTimeout(instanceFile(ns, "web", "web", "", "    ZONE: nowhere\n"), "4s")
	bad := repo.Commit("unschedulable", files)
	startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))

	in := waitPlan(t, c, ns, "web", "deploy", v1alpha1.StatusFatalError, bad, 2*time.Minute)
	msg := in.Status.LastPlan.Message
	if !strings.Contains(msg, "timed out after 4s") || !strings.Contains(msg, "Deployment/"+ns+"/web") {
		t.Fatalf("the failure does not say what it waited for: %q", msg)
	}
	ps := planStatus(in, "deploy")
	if ps.Phases[0].Steps[0].Status != v1alpha1.StatusComplete || ps.Phases[0].Steps[1].Status != v1alpha1.StatusFatalError {
		t.Fatalf("status tree does not show where it stopped: %+v", ps.Phases[0].Steps)
	}
	cond := meta(in, v1alpha1.ConditionReady)
	if cond == nil || cond.Status != "False" {
		t.Errorf("Ready condition after the failure: %+v", cond)
	}

	good := repo.Commit("fix", map[string]string{"instances/web.yaml": withStepTimeout(instanceFile(ns, "web", "web", "", ""), "1m")})
	waitPlan(t, c, ns, "web", "deploy", v1alpha1.StatusComplete, good, 2*time.Minute)
	dep := &appsv1.Deployment{}
	if !exists(t, c, dep, ns, "web") || dep.Status.AvailableReplicas != 1 {
		t.Fatalf("the fixed Deployment is not available: %+v", dep.Status)
	}
}

// TestNewerCommitTakesOverAWaitingPlan: zookeeper's not-allowed plan (a Dummy task that never
// completes, triggered by DISK_SIZE) is taken over at once by a newer commit and recorded as
// superseded.
func TestNewerCommitTakesOverAWaitingPlan(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	repo := testenv.NewGitRepo(t)
	repo.AddOperator("zookeeper", "3.6.2-0.3.3")
	first := repo.Commit("zk", map[string]string{"instances/zk.yaml": instanceFile(ns, "zk", "zookeeper", "", "    NODE_COUNT: 1\n")})
	startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))
	waitPlan(t, c, ns, "zk", "deploy", v1alpha1.StatusComplete, first, 3*time.Minute)

	stuck := repo.Commit("resize", map[string]string{"instances/zk.yaml": instanceFile(ns, "zk", "zookeeper", "", "    NODE_COUNT: 1\n    DISK_SIZE: 10Gi\n")})
	waitPlan(t, c, ns, "zk", "not-allowed", v1alpha1.StatusInProgress, stuck, time.Minute)
	start := time.Now()
	next := repo.Commit("more memory", map[string]string{"instances/zk.yaml": instanceFile(ns, "zk", "zookeeper", "", "    NODE_COUNT: 1\n    DISK_SIZE: 10Gi\n    MEMORY: 512Mi\n")})
	// The deploy that takes over cannot complete: DISK_SIZE changes the StatefulSet's volume
	// claim template, which Kubernetes forbids (why zookeeper has a not-allowed plan). It fails
	// at once instead of retrying forever as KUDO did (KUDO #1764).
	in := waitPlan(t, c, ns, "zk", "deploy", v1alpha1.StatusFatalError, next, 2*time.Minute)
	t.Logf("takeover and the deploy's end in %s", time.Since(start).Round(time.Millisecond))
	if !strings.Contains(in.Status.LastPlan.Message, "field is immutable") {
		t.Errorf("deploy failed for another reason: %s", in.Status.LastPlan.Message)
	}
	na := planStatus(in, "not-allowed")
	if na == nil || na.Status != v1alpha1.StatusFatalError || na.Message != "superseded by "+next[:7] {
		t.Fatalf("not-allowed is not recorded as superseded: %+v", na)
	}
}

// TestStepWithAnInvalidObjectWritesNothing: the second object of a step fails the server-side
// dry-run (an invalid port), so the step writes neither object and fails naming the Service.
func TestStepWithAnInvalidObjectWritesNothing(t *testing.T) {
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	repo := testenv.NewGitRepo(t)
	files := webPackage()
	files["instances/web.yaml"] = instanceFile(ns, "web", "web", "", "")
	first := repo.Commit("web", files)
	startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))
	waitPlan(t, c, ns, "web", "deploy", v1alpha1.StatusComplete, first, 2*time.Minute)

	bad := repo.Commit("bad port", map[string]string{"instances/web.yaml": instanceFile(ns, "web", "web", "", "    PORT: \"700000\"\n")})
	in := waitPlan(t, c, ns, "web", "broken", v1alpha1.StatusFatalError, bad, time.Minute)
	if !strings.Contains(in.Status.LastPlan.Message, "Service/"+ns+"/web") {
		t.Fatalf("the failure does not name the Service: %q", in.Status.LastPlan.Message)
	}
	if exists(t, c, &corev1.ConfigMap{}, ns, "web-config2") || exists(t, c, &corev1.Service{}, ns, "web") {
		t.Fatal("a step with an invalid object wrote part of itself")
	}
	_ = context.Background()
}

func meta(in *v1alpha1.Instance, condition string) *struct{ Status, Reason, Message string } {
	for _, c := range in.Status.Conditions {
		if c.Type == condition {
			return &struct{ Status, Reason, Message string }{string(c.Status), c.Reason, c.Message}
		}
	}
	return nil
}
