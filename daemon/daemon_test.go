package daemon

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/internal/forge"
	"github.com/kudod-dev/kudod/test/testenv"
)

const demoOperator = `apiVersion: kudo.dev/v1beta1
name: demo
operatorVersion: 1.0.0
kubernetesVersion: 1.20.0
tasks:
  - name: config
    kind: Apply
    spec:
      resources: [config.yaml]
  - name: extra
    kind: Apply
    spec:
      resources: [extra.yaml]
  - name: pause
    kind: Dummy
plans:
  deploy:
    phases:
      - name: main
        steps:
          - name: config
            tasks: [config]
          - name: extra
            tasks: [extra]
  hold:
    phases:
      - name: hold
        steps:
          - name: pause
            tasks: [pause]
`

const demoParams = `parameters:
  - name: VALUE
    default: one
  - name: FREEZE
    default: "no"
    trigger: hold
`

func demoFiles(ns string, instances map[string]string) map[string]string {
	files := map[string]string{
		"operators/demo/1.0.0/operator.yaml":         demoOperator,
		"operators/demo/1.0.0/params.yaml":           demoParams,
		"operators/demo/1.0.0/templates/config.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Name }}-config\ndata:\n  value: {{ .Params.VALUE | quote }}\n",
		"operators/demo/1.0.0/templates/extra.yaml":  "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Name }}-extra\ndata:\n  plan: {{ .PlanName }}\n",
	}
	for name, params := range instances {
		files[fmt.Sprintf("instances/%s/%s.yaml", ns, name)] = demoInstance(ns, name, params)
	}
	return files
}

func demoInstance(ns, name, params string) string {
	doc := fmt.Sprintf("apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: %s\n  namespace: %s\nspec:\n  operator:\n    name: demo\n", name, ns)
	if params != "" {
		doc += "  parameters:\n" + params
	}
	return doc
}

func configValue(t *testing.T, c *testenv.Cluster, ns, name string) (string, bool) {
	t.Helper()
	cm := &corev1.ConfigMap{}
	err := c.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, cm)
	if apierrors.IsNotFound(err) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return cm.Data["value"], true
}

func uniqueNamespace(t *testing.T) string {
	return fmt.Sprintf("d%d", time.Now().UnixNano()%1_000_000_000)
}

// TestGitChangesRunTheirPlans follows one repository through the life of its instances: new
// instances deploy, a parameter change re-runs only that instance's plan, a broken file is
// rejected without touching the cluster, a removed instance is cleaned up, and a commit that
// removes everything is held.
func TestGitChangesRunTheirPlans(t *testing.T) {
	c := testenv.APIServer(t)
	ns := uniqueNamespace(t)
	repo := testenv.NewGitRepo(t)
	a := repo.Commit("two instances", demoFiles(ns, map[string]string{"a": "", "b": "    VALUE: bee\n"}))
	_, statuses := startDaemon(t, c, repo, nil)

	planDone(t, c, ns, "a", "deploy", v1alpha1.StatusComplete, a)
	bInst := planDone(t, c, ns, "b", "deploy", v1alpha1.StatusComplete, a)
	if v, _ := configValue(t, c, ns, "a-config"); v != "one" {
		t.Fatalf("a-config value %q", v)
	}
	if v, _ := configValue(t, c, ns, "b-config"); v != "bee" {
		t.Fatalf("b-config value %q", v)
	}
	eventually(t, 10*time.Second, "success status on the first commit", func() (bool, string) {
		s, ok := statuses.last(a, "kudod/"+ns+"/a")
		return ok && s.State == forge.StateSuccess && strings.Contains(s.Description, "deploy plan COMPLETE (2/2 steps"), s.Description
	})
	if n := len(bInst.Status.Inventory); n != 2 {
		t.Errorf("b's inventory has %d entries", n)
	}

	// A parameter change runs a's plan and leaves b alone.
	bc := repo.Commit("change a", map[string]string{fmt.Sprintf("instances/%s/a.yaml", ns): demoInstance(ns, "a", "    VALUE: two\n")})
	planDone(t, c, ns, "a", "deploy", v1alpha1.StatusComplete, bc)
	if v, _ := configValue(t, c, ns, "a-config"); v != "two" {
		t.Fatalf("a-config value %q after the change", v)
	}
	if got := getInstance(t, c, ns, "b"); got.Status.LastPlan.Revision != a || got.Generation != bInst.Generation {
		t.Fatalf("b was touched by a commit that does not change it: last plan at %s, generation %d → %d", got.Status.LastPlan.Revision, bInst.Generation, got.Generation)
	}

	// A file that does not parse holds the whole commit: b is not removed, and a's change
	// in the same commit does not run either (docs/design.md, Plan selection).
	cc := repo.Commit("break b", map[string]string{
		fmt.Sprintf("instances/%s/b.yaml", ns): "apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata: [broken\n",
		fmt.Sprintf("instances/%s/a.yaml", ns): demoInstance(ns, "a", "    VALUE: three\n"),
	})
	eventually(t, 10*time.Second, "failure status for the held commit", func() (bool, string) {
		s, ok := statuses.last(cc, "kudod")
		return ok && s.State == forge.StateFailure && strings.Contains(s.Description, "the commit is held: instances/"+ns+"/b.yaml:"), s.Description
	})
	if getInstance(t, c, ns, "b") == nil {
		t.Fatal("a broken file removed its instance")
	}
	if v, _ := configValue(t, c, ns, "b-config"); v != "bee" {
		t.Fatalf("b-config changed to %q by a broken commit", v)
	}
	if got := getInstance(t, c, ns, "a"); got.Spec.Source.Revision != bc {
		t.Fatalf("a was applied from the held commit: revision %s", got.Spec.Source.Revision)
	}
	eventually(t, 10*time.Second, "a CommitHeld event on the source status", func() (bool, string) {
		var events eventsv1.EventList
		if err := c.Client.List(context.Background(), &events, client.InNamespace("kudod-system")); err != nil {
			return false, err.Error()
		}
		for _, e := range events.Items {
			if e.Reason == "CommitHeld" && e.Regarding.Kind == "ConfigMap" && e.Regarding.Name == v1alpha1.SourceStatusName("platform") && strings.Contains(e.Note, ns+"/b.yaml") {
				return true, ""
			}
		}
		return false, fmt.Sprintf("%d events", len(events.Items))
	})

	// Removing a runs its cleanup: its objects and its Instance go.
	dc := repo.Commit("remove a, fix b", map[string]string{
		fmt.Sprintf("instances/%s/a.yaml", ns): "",
		fmt.Sprintf("instances/%s/b.yaml", ns): demoInstance(ns, "b", "    VALUE: bee\n"),
	})
	eventually(t, 30*time.Second, "a to be cleaned up", func() (bool, string) {
		_, cfg := configValue(t, c, ns, "a-config")
		_, extra := configValue(t, c, ns, "a-extra")
		in := getInstance(t, c, ns, "a")
		return !cfg && !extra && in == nil, fmt.Sprintf("config %v extra %v instance %v", cfg, extra, in != nil)
	})
	eventually(t, 10*time.Second, "cleanup status on the removing commit", func() (bool, string) {
		s, ok := statuses.last(dc, "kudod/"+ns+"/a")
		return ok && s.State == forge.StateSuccess, s.Description
	})

	// A commit that removes every instance is held.
	ec := repo.Commit("empty", map[string]string{fmt.Sprintf("instances/%s/b.yaml", ns): "", "README.md": "nothing here\n"})
	eventually(t, 10*time.Second, "the empty commit to be held", func() (bool, string) {
		s, ok := statuses.last(ec, "kudod")
		return ok && s.State == forge.StateFailure && strings.Contains(s.Description, "removes every instance"), s.Description
	})
	if getInstance(t, c, ns, "b") == nil {
		t.Fatal("the held commit removed b")
	}
}

// TestNewerCommitSupersedesAWaitingPlan: a plan paused in a Dummy step is taken over at once by
// a newer commit, and recorded as superseded.
func TestNewerCommitSupersedesAWaitingPlan(t *testing.T) {
	c := testenv.APIServer(t)
	ns := uniqueNamespace(t)
	repo := testenv.NewGitRepo(t)
	a := repo.Commit("deploy", demoFiles(ns, map[string]string{"z": ""}))
	_, statuses := startDaemon(t, c, repo, nil)
	planDone(t, c, ns, "z", "deploy", v1alpha1.StatusComplete, a)

	hold := repo.Commit("freeze", map[string]string{fmt.Sprintf("instances/%s/z.yaml", ns): demoInstance(ns, "z", "    FREEZE: \"yes\"\n")})
	planDone(t, c, ns, "z", "hold", v1alpha1.StatusInProgress, hold)
	start := time.Now()
	next := repo.Commit("change a value", map[string]string{fmt.Sprintf("instances/%s/z.yaml", ns): demoInstance(ns, "z", "    FREEZE: \"yes\"\n    VALUE: later\n")})
	in := planDone(t, c, ns, "z", "deploy", v1alpha1.StatusComplete, next)
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("takeover took %s", d)
	}
	var held *v1alpha1.PlanStatus
	for i := range in.Status.Plans {
		if in.Status.Plans[i].Name == "hold" {
			held = &in.Status.Plans[i]
		}
	}
	if held == nil || held.Status != v1alpha1.StatusFatalError || !strings.Contains(held.Message, "superseded by "+next[:7]) {
		t.Fatalf("the hold plan is not recorded as superseded: %+v", held)
	}
	eventually(t, 10*time.Second, "an error status saying superseded", func() (bool, string) {
		s, ok := statuses.last(hold, "kudod/"+ns+"/z")
		return ok && s.State == forge.StateError && s.Description == "superseded by "+next[:7], string(s.State) + " " + s.Description
	})
}
