package planner

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

func TestCycles(t *testing.T) {
	cases := []struct {
		name string
		g    DependencyGraph
		want map[string][]string
	}{
		{"none", DependencyGraph{"d/a": {"d/b"}, "d/b": {"d/c"}, "d/c": nil}, map[string][]string{}},
		{"two", DependencyGraph{"d/a": {"d/b"}, "d/b": {"d/a"}}, map[string][]string{"d/a": {"d/a", "d/b", "d/a"}, "d/b": {"d/b", "d/a", "d/b"}}},
		{"three, with a tail", DependencyGraph{"d/a": {"d/b"}, "d/b": {"d/c"}, "d/c": {"d/a"}, "d/x": {"d/a"}},
			map[string][]string{"d/a": {"d/a", "d/b", "d/c", "d/a"}, "d/b": {"d/b", "d/c", "d/a", "d/b"}, "d/c": {"d/c", "d/a", "d/b", "d/c"}}},
		{"itself", DependencyGraph{"d/a": {"d/a"}}, map[string][]string{"d/a": {"d/a", "d/a"}}},
		{"a figure eight: the shortest cycle through each", DependencyGraph{"d/a": {"d/b", "d/c"}, "d/b": {"d/a"}, "d/c": {"d/a"}},
			map[string][]string{"d/a": {"d/a", "d/b", "d/a"}, "d/b": {"d/b", "d/a", "d/b"}, "d/c": {"d/c", "d/a", "d/c"}}},
		{"edges to unknown instances are no cycle", DependencyGraph{"d/a": {"d/nosuch"}}, map[string][]string{}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.g.Cycles(); !reflect.DeepEqual(got, c.want) {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

// dep is a planner state with dependencies, for the dependency tests.
func dep(key string, deps ...string) *State {
	ns, name, _ := strings.Cut(key, "/")
	s := &State{Namespace: ns, Name: name}
	for _, d := range deps {
		dns, dname, ok := strings.Cut(d, "/")
		if !ok {
			dname, dns = dns, "" // same namespace
		}
		s.DependsOn = append(s.DependsOn, v1alpha1.InstanceRef{Name: dname, Namespace: dns})
	}
	return s
}

func decision(action Action, old, new *State) Decision {
	s := new
	if s == nil {
		s = old
	}
	d := Decision{Namespace: s.Namespace, Instance: s.Name, Action: action, Old: old, New: new, Reasons: []string{}}
	switch action {
	case ActionDeploy, ActionUpdate, ActionUpgrade:
		d.Plan = string(action)
	case ActionCleanup:
		d.Plan = "cleanup"
	}
	return d
}

func TestCheckDependencies(t *testing.T) {
	type want struct {
		action Action
		order  int
		after  []string
		err    string
	}
	cases := []struct {
		name      string
		decisions []Decision
		outside   DependencyGraph
		want      map[string]want
	}{
		{
			name: "zk, kafka and app, all new: in that order",
			decisions: []Decision{
				decision(ActionDeploy, nil, dep("data/app", "kafka")),
				decision(ActionDeploy, nil, dep("data/kafka", "zk")),
				decision(ActionDeploy, nil, dep("data/zk")),
			},
			want: map[string]want{
				"data/zk":    {action: ActionDeploy, order: 1},
				"data/kafka": {action: ActionDeploy, order: 2, after: []string{"data/zk"}},
				"data/app":   {action: ActionDeploy, order: 3, after: []string{"data/kafka"}},
			},
		},
		{
			name: "a dependency that does not change does not delay",
			decisions: []Decision{
				decision(ActionUpdate, dep("data/kafka", "zk"), dep("data/kafka", "zk")),
				decision(ActionNone, dep("data/zk"), dep("data/zk")),
			},
			want: map[string]want{"data/kafka": {action: ActionUpdate, order: 1}, "data/zk": {action: ActionNone}},
		},
		{
			name: "removal goes the other way",
			decisions: []Decision{
				decision(ActionCleanup, dep("data/app", "kafka"), nil),
				decision(ActionCleanup, dep("data/kafka", "zk"), nil),
				decision(ActionCleanup, dep("data/zk"), nil),
			},
			want: map[string]want{
				"data/app":   {action: ActionCleanup, order: 1},
				"data/kafka": {action: ActionCleanup, order: 2, after: []string{"data/app"}},
				"data/zk":    {action: ActionCleanup, order: 3, after: []string{"data/kafka"}},
			},
		},
		{
			name: "a cycle rejects its instances, and what depends on a new one of them",
			decisions: []Decision{
				decision(ActionDeploy, nil, dep("data/a", "b")),
				decision(ActionDeploy, nil, dep("data/b", "a")),
				decision(ActionDeploy, nil, dep("data/c", "a")),
				decision(ActionDeploy, nil, dep("data/d")),
			},
			want: map[string]want{
				"data/a": {action: ActionRejected, err: "spec.dependsOn: dependency cycle: data/a → data/b → data/a"},
				"data/b": {action: ActionRejected, err: "dependency cycle: data/b → data/a → data/b"},
				"data/c": {action: ActionRejected, err: "spec.dependsOn: data/a is rejected in this commit: spec.dependsOn: dependency cycle"},
				"data/d": {action: ActionDeploy, order: 1},
			},
		},
		{
			name: "a cycle through another repository's instance",
			decisions: []Decision{
				decision(ActionUpdate, dep("data/a"), dep("data/a", "other/x")),
			},
			outside: DependencyGraph{"other/x": {"data/a"}},
			want:    map[string]want{"data/a": {action: ActionRejected, err: "dependency cycle: data/a → other/x → data/a"}},
		},
		{
			name: "an existing instance with a rejected change still exists",
			decisions: []Decision{
				reject(decision(ActionUpdate, dep("data/zk"), dep("data/zk")), "immutable"),
				decision(ActionDeploy, nil, dep("data/kafka", "zk")),
			},
			want: map[string]want{"data/zk": {action: ActionRejected, err: "immutable"}, "data/kafka": {action: ActionDeploy, order: 1}},
		},
		{
			name: "missing, removed, and found outside",
			decisions: []Decision{
				decision(ActionDeploy, nil, dep("data/a", "nosuch")),
				decision(ActionDeploy, nil, dep("data/b", "gone")),
				decision(ActionCleanup, dep("data/gone"), nil),
				decision(ActionDeploy, nil, dep("data/c", "other/x")),
			},
			outside: DependencyGraph{"other/x": nil},
			want: map[string]want{
				"data/a":    {action: ActionRejected, err: "spec.dependsOn: data/nosuch does not exist in any repository kudod follows"},
				"data/b":    {action: ActionRejected, err: "spec.dependsOn: data/gone is removed by this commit"},
				"data/gone": {action: ActionCleanup, order: 1},
				"data/c":    {action: ActionDeploy, order: 1},
			},
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := &Result{Decisions: c.decisions}
			CheckDependencies(res, GraphOf(res, c.outside), DependencyOptions{})
			for _, d := range res.Decisions {
				w, ok := c.want[d.Key()]
				if !ok {
					t.Fatalf("unexpected decision %s", d.Key())
				}
				if d.Action != w.action || d.Order != w.order || !reflect.DeepEqual(d.After, w.after) || !strings.Contains(d.Error, w.err) || (w.err == "" && d.Error != "") {
					t.Errorf("%s: got %s order %d after %v error %q; want %s order %d after %v error %q", d.Key(), d.Action, d.Order, d.After, d.Error, w.action, w.order, w.after, w.err)
				}
			}
		})
	}
}

func TestCheckDependenciesGates(t *testing.T) {
	kafka := dep("data/kafka", "zk")
	kafka.Approval = &v1alpha1.Approval{Plans: []string{"update"}}
	app := dep("data/app")
	res := &Result{Decisions: []Decision{
		decision(ActionUpdate, kafka, kafka),
		decision(ActionDeploy, nil, app),
		decision(ActionNone, dep("data/zk"), dep("data/zk")),
	}}
	now := mustTime(t, "UTC", "2026-12-23 12:00:00")
	CheckDependencies(res, GraphOf(res, nil), DependencyOptions{
		Approval: &v1alpha1.Approval{Plans: []string{"deploy"}},
		Windows:  []v1alpha1.Window{window("0 22 * * *", time.Hour, "", v1alpha1.WindowAllow)},
		Now:      now,
	})
	k, a, z := res.Decision("data/kafka"), res.Decision("data/app"), res.Decision("data/zk")
	if !k.NeedsApproval || !a.NeedsApproval || z.NeedsApproval {
		t.Errorf("approval: kafka %v app %v zk %v", k.NeedsApproval, a.NeedsApproval, z.NeedsApproval)
	}
	if !reflect.DeepEqual(k.DependsOn, []string{"data/zk"}) {
		t.Errorf("kafka dependsOn %v", k.DependsOn)
	}
	if k.Window == nil || k.Window.Open || k.Window.Next == nil || !k.Window.Next.Equal(mustTime(t, "UTC", "2026-12-23 22:00:00")) || k.Window.Message != "waiting for window Wed 22:00 UTC" {
		t.Errorf("kafka window %+v", k.Window)
	}
	if z.Window != nil {
		t.Errorf("an instance without a plan has a window: %+v", z.Window)
	}
	if w := res.Waves(); !reflect.DeepEqual(w, [][]string{{"data/kafka", "data/app"}}) {
		t.Errorf("waves %v", w)
	}
}
