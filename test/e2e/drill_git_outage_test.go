package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/test/testenv"
)

// outage is how long the drills keep a server down.
const outage = 60 * time.Second

// TestDrillGitServerDown: the git server is down for a minute while a commit that removes an
// instance and a template waits in it. Meanwhile nothing is pruned or cleaned up (no delete
// from kudod in the audit log, every object still there), the daemon keeps running, and the
// failure shows in the source status and as a PollFailed event. Once the server is back,
// the next poll (within one interval) takes the waiting commit and the removal proceeds.
func TestDrillGitServerDown(t *testing.T) {
	t.Parallel()
	drillTime(t)
	c := testenv.SimulatedCluster(t)
	ns := c.Namespace(t)
	repo := testenv.NewGitRepo(t)
	files := prunerPackage("kept.yaml, dropped.yaml", map[string]string{"kept.yaml": cmTemplate("kept"), "dropped.yaml": cmTemplate("dropped")})
	files["instances/a.yaml"] = instanceFile(ns, "a", "pruner", "", "")
	files["instances/b.yaml"] = instanceFile(ns, "b", "pruner", "", "")
	first := repo.Commit("two instances", files)
	srv := newGitServer(t, repo)
	push(repo)
	const interval = 5 * time.Second
	config := writeFile(t, fmt.Sprintf("repositories:\n  - name: %s\n    url: %s\n    branch: main\n    interval: %s\ncluster:\n  kubeconfig: %s\n", repoName(t), srv.url(), interval, c.Kubeconfig))
	k := startKudod(t, config)
	for _, name := range []string{"a", "b"} {
		waitPlan(t, c, ns, name, "deploy", v1alpha1.StatusComplete, first, 2*time.Minute)
	}
	objects := []string{"a-kept", "a-dropped", "b-kept", "b-dropped"}

	srv.stop()
	down := time.Now()
	// Committed while the server is down: b removed, dropped.yaml no longer rendered.
	removal := prunerPackage("kept.yaml", map[string]string{"kept.yaml": cmTemplate("kept"), "dropped.yaml": ""})
	removal["instances/b.yaml"] = ""
	second := repo.Commit("remove b and a template", removal)
	push(repo)

	eventually(t, 2*interval+10*time.Second, "the source status to show the fetch error", func() (bool, string) {
		s := sourceStatus(t, c, repoName(t))
		e, _ := s["lastError"].(string)
		return strings.Contains(e, "connection refused"), describe(s)
	})
	eventually(t, 30*time.Second, "a PollFailed event on the source status", func() (bool, string) {
		return sourceEvent(t, c, repoName(t), "PollFailed", "connection refused"), "no event yet"
	})
	consistently(t, time.Until(down.Add(outage)), "nothing pruned or cleaned up while the git server is down", func() (bool, string) {
		if !k.running() {
			return false, "kudod exited"
		}
		for _, name := range []string{"a", "b"} {
			if in := getInstance(c, ns, name); in == nil || in.DeletionTimestamp != nil {
				return false, "instance " + name + " is gone or going"
			}
		}
		for _, name := range objects {
			if !exists(t, c, &corev1.ConfigMap{}, ns, name) {
				return false, name + " is gone"
			}
		}
		return true, ""
	})
	srv.start()
	up := time.Now()
	t.Logf("git server down for %s", up.Sub(down).Round(time.Second))
	eventually(t, interval+interval/20+10*time.Second, "the source to reach the waiting commit", func() (bool, string) {
		s := sourceStatus(t, c, repoName(t))
		return s != nil && s["revision"] == second && s["lastError"] == nil, describe(s)
	})
	recovery := time.Since(up)
	t.Logf("recovered %s after the git server came back (poll interval %s)", recovery.Round(100*time.Millisecond), interval)
	// The next poll is due at most an interval (+5% jitter) after the last failed one; the
	// rest is the poll itself and recording it, on a loaded machine.
	if limit := interval + interval/20 + 5*time.Second; recovery > limit {
		t.Errorf("recovery took %s, more than one poll interval (%s)", recovery, limit)
	}
	if deletes := kudodDeletes(t, c, ns, down, up); len(deletes) > 0 {
		t.Errorf("kudod deleted while the git server was down: %v", deletes)
	}
	eventually(t, 30*time.Second, "a PollRecovered event", func() (bool, string) {
		return sourceEvent(t, c, repoName(t), "PollRecovered", second[:7]), "no event yet"
	})
	// The waiting commit is carried out.
	eventually(t, time.Minute, "b and a-dropped to be removed", func() (bool, string) {
		if getInstance(c, ns, "b") != nil {
			return false, "instance b is still there"
		}
		for _, name := range []string{"a-dropped", "b-kept", "b-dropped"} {
			if exists(t, c, &corev1.ConfigMap{}, ns, name) {
				return false, name + " is still there"
			}
		}
		return exists(t, c, &corev1.ConfigMap{}, ns, "a-kept"), "a-kept is gone"
	})
}

// kudodDeletes lists the deletions kudod sent for objects of namespace between from and to.
func kudodDeletes(t *testing.T, c *testenv.Cluster, ns string, from, to time.Time) []string {
	t.Helper()
	var out []string
	for _, e := range c.AuditEvents(t) {
		if !strings.HasPrefix(e.UserAgent, "kudod") || e.ObjectRef == nil || e.ObjectRef.Namespace != ns || e.DryRun() {
			continue
		}
		if (e.Verb == "delete" || e.Verb == "deletecollection") && e.StageTimestamp.After(from) && e.StageTimestamp.Time.Before(to) {
			out = append(out, e.ObjectRef.Resource+"/"+e.ObjectRef.Name)
		}
	}
	return out
}

// sourceEvent reports whether an event about a repository's status ConfigMap has the reason
// and a note containing text.
func sourceEvent(t *testing.T, c *testenv.Cluster, repository, reason, text string) bool {
	t.Helper()
	out, err := c.Kubectl(context.Background(), "get", "events.events.k8s.io", "-n", "kudod-system", "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Items []struct {
			Reason    string `json:"reason"`
			Note      string `json:"note"`
			Regarding struct {
				Kind string `json:"kind"`
				Name string `json:"name"`
			} `json:"regarding"`
		} `json:"items"`
	}
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	for _, e := range list.Items {
		if e.Regarding.Kind == "ConfigMap" && e.Regarding.Name == v1alpha1.SourceStatusName(repository) && e.Reason == reason && strings.Contains(e.Note, text) {
			return true
		}
	}
	return false
}
