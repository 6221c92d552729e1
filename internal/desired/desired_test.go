package desired

import (
	"context"
	"fmt"
	"testing"
	"testing/fstest"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/internal/store"
	"github.com/kudod-dev/kudod/planner"
	"github.com/kudod-dev/kudod/sources"
)

const (
	commitA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	commitB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
)

// operator is the smallest package with a plan that applies a template.
const operator = `apiVersion: kudo.dev/v1beta1
name: demo
operatorVersion: 1.0.0
kubernetesVersion: 1.20.0
tasks: [{name: config, kind: Apply, spec: {resources: [config.yaml]}}]
plans: {deploy: {phases: [{name: main, steps: [{name: config, tasks: [config]}]}]}}
`

// snapshot is a repository with the demo package and one instance per name → VALUE.
func snapshot(commit string, instances map[string]string) sources.Snapshot {
	fsys := fstest.MapFS{
		"operators/demo/1.0.0/operator.yaml":         {Data: []byte(operator)},
		"operators/demo/1.0.0/params.yaml":           {Data: []byte("parameters:\n  - name: VALUE\n    default: one\n")},
		"operators/demo/1.0.0/templates/config.yaml": {Data: []byte("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Name }}\ndata:\n  value: {{ .Params.VALUE | quote }}\n")},
	}
	for name, value := range instances {
		fsys["instances/apps/"+name+".yaml"] = &fstest.MapFile{Data: []byte(fmt.Sprintf(
			"apiVersion: kudod.dev/v1alpha1\nkind: Instance\nmetadata:\n  name: %s\n  namespace: apps\nspec:\n  operator:\n    name: demo\n  parameters:\n    VALUE: %s\n", name, value))}
	}
	return sources.Snapshot{Repository: "platform", Commit: commit, FS: fsys}
}

// commits is a git repository of known commits.
type commits map[string]sources.Snapshot

func (c commits) SnapshotAt(_ context.Context, sha string) (sources.Snapshot, error) {
	if s, ok := c[sha]; ok {
		return s, nil
	}
	return sources.Snapshot{}, fmt.Errorf("no commit %s", sha)
}

// cluster holds the Instances a planner lists.
func cluster(t *testing.T, objs ...*v1alpha1.Instance) *fake.ClientBuilder {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	b := fake.NewClientBuilder().WithScheme(scheme)
	for _, o := range objs {
		b = b.WithObjects(o)
	}
	return b
}

// applied is the Instance a completed plan left for an instance of snap.
func applied(t *testing.T, s *store.Store, snap sources.Snapshot, name string) *v1alpha1.Instance {
	t.Helper()
	idx, err := s.IndexSnapshot(context.Background(), "platform", snap)
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range idx.Instances {
		if in.Name == name {
			inst := Instance("platform", snap.Commit, in, nil)
			inst.Status.Applied = &v1alpha1.AppliedState{Revision: snap.Commit}
			return inst
		}
	}
	t.Fatalf("no instance %s", name)
	return nil
}

func TestPlan(t *testing.T) {
	repo := Repository{Name: "platform", Prune: true}
	old := snapshot(commitA, map[string]string{"a": "one", "b": "one"})

	tests := []struct {
		name     string
		next     sources.Snapshot
		git      commits // what the store can still read
		existing []string
		child    bool
		want     map[string]planner.Action
		held     bool
	}{
		{
			name: "new instances deploy",
			next: snapshot(commitB, map[string]string{"a": "one"}), git: commits{},
			want: map[string]planner.Action{"apps/a": planner.ActionDeploy},
		},
		{
			name: "a changed parameter updates, against the package the instance was planned with",
			next: snapshot(commitB, map[string]string{"a": "two", "b": "one"}), git: commits{commitA: old},
			existing: []string{"a", "b"},
			want:     map[string]planner.Action{"apps/a": planner.ActionUpdate, "apps/b": planner.ActionNone},
		},
		{
			name: "the old commit is gone: the current package stands in",
			next: snapshot(commitB, map[string]string{"a": "two", "b": "one"}), git: commits{},
			existing: []string{"a", "b"},
			want:     map[string]planner.Action{"apps/a": planner.ActionUpdate, "apps/b": planner.ActionNone},
		},
		{
			name: "a removed instance is cleaned up",
			next: snapshot(commitB, map[string]string{"a": "one"}), git: commits{commitA: old},
			existing: []string{"a", "b"},
			want:     map[string]planner.Action{"apps/a": planner.ActionNone, "apps/b": planner.ActionCleanup},
		},
		{
			name: "KudoOperator children are not the repository's instances",
			next: snapshot(commitB, map[string]string{"a": "one"}), git: commits{commitA: old},
			existing: []string{"a", "b"}, child: true,
			want: map[string]planner.Action{"apps/a": planner.ActionNone},
		},
		{
			name: "a commit that removes everything is held",
			next: snapshot(commitB, nil), git: commits{commitA: old},
			existing: []string{"a"}, held: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The cluster's Instances come from commit A, indexed by a store of their own so
			// that the planner's store reads only what tt.git holds.
			setup := store.New()
			setup.AddRepository("platform", commits{}, "")
			var objs []*v1alpha1.Instance
			for _, name := range tt.existing {
				inst := applied(t, setup, old, name)
				if tt.child && name == "b" {
					inst.Labels[v1alpha1.LabelParent] = "apps.a"
				}
				objs = append(objs, inst)
			}
			s := store.New()
			s.AddRepository("platform", tt.git, "")
			p := &Planner{Client: cluster(t, objs...).Build(), Store: s, Log: logr.Discard()}

			plan, err := p.Plan(context.Background(), repo, tt.next)
			if err != nil {
				t.Fatal(err)
			}
			if (plan.Held != nil) != tt.held {
				t.Fatalf("held: %v", plan.Held)
			}
			got := map[string]planner.Action{}
			for _, d := range plan.Decisions {
				got[d.Key()] = d.Action
			}
			if !tt.held && fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("decisions %v, want %v", got, tt.want)
			}
			if tt.child {
				if _, ok := plan.Existing["apps/b"]; ok {
					t.Fatal("a child Instance is listed as the repository's")
				}
			}
			// The snapshot's index is kept: executions find its packages without git.
			if _, err := s.PackageAt(context.Background(), "platform", tt.next.Commit, "operators/demo/1.0.0", ""); err != nil {
				t.Fatalf("the planned snapshot's package: %v", err)
			}
		})
	}
}

func TestSameSpec(t *testing.T) {
	s := store.New()
	s.AddRepository("platform", commits{}, "")
	have := applied(t, s, snapshot(commitA, map[string]string{"a": "one"}), "a")
	have.Spec.Plan = &v1alpha1.PlanRequest{Name: "deploy", UID: "u1"}
	tests := []struct {
		name string
		edit func(*v1alpha1.Instance)
		same bool
	}{
		{"another commit, no plan", func(w *v1alpha1.Instance) { w.Spec.Source.Revision, w.Spec.Plan = commitB, nil }, true},
		{"another parameter", func(w *v1alpha1.Instance) { w.Spec.Parameters = map[string]string{"VALUE": "two"} }, false},
		{"suspended", func(w *v1alpha1.Instance) { w.Spec.Suspend = true }, false},
		{"another repository", func(w *v1alpha1.Instance) { w.Labels[v1alpha1.LabelRepository] = "apps" }, false},
		{"a step timeout", func(w *v1alpha1.Instance) { w.Spec.StepTimeout = &metav1.Duration{} }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, w := have.DeepCopy(), have.DeepCopy()
			tt.edit(w)
			if got := SameSpec(h, w); got != tt.same {
				t.Errorf("SameSpec = %v, want %v", got, tt.same)
			}
		})
	}
}
