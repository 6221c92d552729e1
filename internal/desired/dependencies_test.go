package desired

import (
	"context"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/go-logr/logr"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/internal/store"
	"github.com/kudod-dev/kudod/planner"
	"github.com/kudod-dev/kudod/sources"
)

// TestPlanChecksDependencies: a poll counts the Instances of the other repositories the
// daemon follows as dependencies that exist, not those being removed; it rejects cycles and
// missing dependencies, orders the plans and applies the repository's approval and windows.
func TestPlanChecksDependencies(t *testing.T) {
	snap := snapshot(commitB, map[string]string{"a": "one", "b": "one", "c": "one", "d": "one"})
	fsys := snap.FS.(fstest.MapFS)
	spec := map[string]string{
		"a": "  dependsOn: [{name: x, namespace: other}]\n",
		"b": "  dependsOn: [{name: a}]\n",
		"c": "  dependsOn: [{name: gone, namespace: other}]\n",
		"d": "  dependsOn: [{name: y, namespace: other}]\n",
	}
	for name, extra := range spec {
		f := fsys["instances/apps/"+name+".yaml"]
		f.Data = append(f.Data, extra...)
	}
	outside := func(name string, deleting bool, deps ...v1alpha1.InstanceRef) *v1alpha1.Instance {
		in := &v1alpha1.Instance{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "other", Labels: map[string]string{v1alpha1.LabelRepository: "elsewhere"}}}
		in.Spec.DependsOn = deps
		if deleting {
			now := metav1.Now()
			in.DeletionTimestamp, in.Finalizers = &now, []string{v1alpha1.FinalizerCleanup}
		}
		return in
	}
	objs := []*v1alpha1.Instance{
		outside("x", false),
		outside("gone", true),
		outside("y", false, v1alpha1.InstanceRef{Name: "d", Namespace: "apps"}), // y → d → y
	}
	s := store.New()
	s.AddRepository("platform", commits{}, "")
	now := time.Date(2026, 12, 23, 12, 0, 0, 0, time.UTC)
	p := &Planner{Client: cluster(t, objs...).Build(), Store: s, Log: logr.Discard(), Now: func() time.Time { return now }}
	repo := Repository{Name: "platform", Prune: true, Approval: &v1alpha1.Approval{Plans: []string{"deploy"}},
		Windows: []v1alpha1.Window{{Schedule: "0 22 * * *", Duration: metav1.Duration{Duration: time.Hour}}}}
	plan, err := p.Plan(context.Background(), repo, sources.Snapshot{Repository: "platform", Commit: commitB, FS: fsys})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		action planner.Action
		order  int
		err    string
	}{
		"apps/a": {planner.ActionDeploy, 1, ""},
		"apps/b": {planner.ActionDeploy, 2, ""},
		"apps/c": {planner.ActionRejected, 0, "spec.dependsOn: other/gone does not exist in any repository kudod follows"},
		"apps/d": {planner.ActionRejected, 0, "dependency cycle: apps/d → other/y → apps/d"},
	}
	for _, d := range plan.Decisions {
		w := want[d.Key()]
		if d.Action != w.action || d.Order != w.order || !strings.Contains(d.Error, w.err) {
			t.Errorf("%s: %s order %d %q; want %s order %d %q", d.Key(), d.Action, d.Order, d.Error, w.action, w.order, w.err)
		}
		if d.Action == planner.ActionDeploy && (!d.NeedsApproval || d.Window == nil || d.Window.Open) {
			t.Errorf("%s: the repository's approval and windows do not apply: %+v %+v", d.Key(), d.NeedsApproval, d.Window)
		}
	}
}
