package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// windowAt is a windows: line of one window opening at the minute of t (UTC), every day.
func windowAt(t time.Time, d time.Duration, kind string) string {
	return fmt.Sprintf("  windows: [{schedule: \"%d %d * * *\", duration: %s, kind: %s}]\n", t.Minute(), t.Hour(), d, kind)
}

// nextMinute is the first whole minute at least lead from now.
func nextMinute(lead time.Duration) time.Time {
	now := time.Now().UTC()
	t := now.Truncate(time.Minute).Add(time.Minute)
	for t.Sub(now) < lead {
		t = t.Add(time.Minute)
	}
	return t
}

// startedWithin checks that an Instance's last plan started in [from, from+d).
func startedWithin(t testing.TB, in *v1alpha1.Instance, from time.Time, d time.Duration) {
	t.Helper()
	start := in.Status.LastPlan.StartTime.Time
	if start.Before(from.Truncate(time.Second)) || !start.Before(from.Add(d)) {
		t.Errorf("%s's plan started at %s; want within %s of %s", in.Name, start.UTC().Format(time.RFC3339), d, from.UTC().Format(time.RFC3339))
	}
}

// TestMaintenanceWindows: changes pushed outside their windows wait. One waits for an allow
// window that opens a minute later and runs within 5 s of the opening; one is held by a deny
// window until it ends; one, held by a long freeze, runs at once with `kudod trigger
// --ignore-windows`, which the event records.
func TestMaintenanceWindows(t *testing.T) {
	t.Parallel()
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	repo := testenv.NewGitRepo(t)
	repo.AddOperator("ordered", "1.0.0")
	names := []string{"allow", "deny", "urgent"}
	files := map[string]string{}
	for _, name := range names {
		files["instances/"+name+".yaml"] = orderedFile(ns, name, "one", "")
	}
	first := repo.Commit("three instances", files)
	k := startKudod(t, daemonConfig(t, c.Kubeconfig, "file://"+repo.Dir, ""))
	for _, name := range names {
		waitPlan(t, c, ns, name, "deploy", v1alpha1.StatusComplete, first, 2*time.Minute)
	}

	now := time.Now().UTC()
	opened := now.Truncate(time.Minute)
	denyEnd := now.Add(25 * time.Second).Truncate(time.Second)
	allowAt := nextMinute(35 * time.Second)
	second := repo.Commit("changes outside their windows", map[string]string{
		"instances/allow.yaml":  orderedFile(ns, "allow", "two", windowAt(allowAt, 10*time.Minute, "allow")),
		"instances/deny.yaml":   orderedFile(ns, "deny", "two", windowAt(opened, denyEnd.Sub(opened), "deny")),
		"instances/urgent.yaml": orderedFile(ns, "urgent", "two", windowAt(opened, time.Hour, "deny")),
	})
	waitWaiting(t, c, ns, "allow", v1alpha1.WaitWindow, "waiting for window "+allowAt.Format("Mon 15:04 UTC"), 30*time.Second)
	waitWaiting(t, c, ns, "deny", v1alpha1.WaitWindow, "a deny window is open", 30*time.Second)
	urgent := waitWaiting(t, c, ns, "urgent", v1alpha1.WaitWindow, "a deny window is open", 30*time.Second)
	if tree := urgent.Status.Plan("update"); tree == nil || tree.Status != v1alpha1.StatusPending || !strings.HasPrefix(tree.Message, "waiting for window ") {
		t.Errorf("urgent's update tree while it waits: %+v", tree)
	}

	// An emergency: --ignore-windows starts the held plan at once.
	if out, errOut, code := runCLI(t, "trigger", "urgent", "update", "-n", ns, "--ignore-windows", "--kubeconfig", c.Kubeconfig); code != 0 {
		t.Fatalf("kudod trigger --ignore-windows: exit %d: %s%s", code, out, errOut)
	}
	triggered := time.Now()
	in := waitPlan(t, c, ns, "urgent", "update", v1alpha1.StatusComplete, second, 15*time.Second)
	startedWithin(t, in, triggered, 5*time.Second)
	if in.Status.LastPlan.Trigger != v1alpha1.TriggerGit || configValue(t, c, ns, "urgent") != "two" {
		t.Errorf("urgent: %+v, value %q", in.Status.LastPlan, configValue(t, c, ns, "urgent"))
	}
	if !hasEvent(t, c, ns, "urgent", "WindowsIgnored", "kudod trigger --ignore-windows by") {
		t.Error("no WindowsIgnored event")
	}

	// The deny window holds its change until it ends.
	in = waitPlan(t, c, ns, "deny", "update", v1alpha1.StatusComplete, second, time.Until(denyEnd)+15*time.Second)
	startedWithin(t, in, denyEnd, 5*time.Second)

	// The allow window opens a minute later: the change runs within 5 s.
	in = waitPlan(t, c, ns, "allow", "update", v1alpha1.StatusComplete, second, time.Until(allowAt)+15*time.Second)
	startedWithin(t, in, allowAt, 5*time.Second)
	for _, name := range []string{"allow", "deny"} {
		if v := configValue(t, c, ns, name); v != "two" {
			t.Errorf("%s's value: %q", name, v)
		}
	}
	if strings.Contains(k.logs(), "does not compute") {
		t.Errorf("a window did not compute:\n%s", tail(k.logs(), 20))
	}
}
