package poll

import (
	"reflect"
	"testing"

	"github.com/kudod-dev/kudod/planner"
)

// TestActWaves: a poll writes the Instances of what runs first first; decisions that run no
// plan and change nothing are left out.
func TestActWaves(t *testing.T) {
	state := &planner.State{}
	decisions := []planner.Decision{
		{Namespace: "d", Instance: "app", Action: planner.ActionDeploy, Order: 3},
		{Namespace: "d", Instance: "kafka", Action: planner.ActionDeploy, Order: 2},
		{Namespace: "d", Instance: "zk", Action: planner.ActionDeploy, Order: 1},
		{Namespace: "d", Instance: "bad", Action: planner.ActionRejected},
		{Namespace: "d", Instance: "same", Action: planner.ActionNone},
		{Namespace: "d", Instance: "settings", Action: planner.ActionNone, New: state},
		{Namespace: "d", Instance: "other", Action: planner.ActionUpdate, Order: 1},
	}
	var got [][]string
	for _, wave := range actWaves(decisions) {
		var keys []string
		for _, d := range wave {
			keys = append(keys, d.Instance)
		}
		got = append(got, keys)
	}
	want := [][]string{{"bad", "settings"}, {"zk", "other"}, {"kafka"}, {"app"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("waves %v, want %v", got, want)
	}
}
