package daemon

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr/testr"
	"k8s.io/apimachinery/pkg/types"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/internal/forge"
	"github.com/kudod-dev/kudod/sources"
	"github.com/kudod-dev/kudod/test/testenv"
)

// statusLog collects commit statuses.
type statusLog struct {
	mu       sync.Mutex
	statuses []forge.Status
}

func (l *statusLog) Report(s forge.Status) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statuses = append(l.statuses, s)
}

// last returns the last status of a context on a commit.
func (l *statusLog) last(sha, context string) (forge.Status, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := len(l.statuses) - 1; i >= 0; i-- {
		if s := l.statuses[i]; s.SHA == sha && s.Context == context {
			return s, true
		}
	}
	return forge.Status{}, false
}

// startStoppableDaemon runs a daemon and returns a function that stops it (also at the end).
func startStoppableDaemon(t *testing.T, c *testenv.Cluster, repo *testenv.GitRepo, tune func(*Options, *Repository)) func() {
	t.Helper()
	_, _, stop := runDaemon(t, c, repo, tune)
	return stop
}

// startDaemon runs a daemon following repo on the shared API server until the test ends.
func startDaemon(t *testing.T, c *testenv.Cluster, repo *testenv.GitRepo, tune func(*Options, *Repository)) (*Daemon, *statusLog) {
	t.Helper()
	d, statuses, _ := runDaemon(t, c, repo, tune)
	return d, statuses
}

func runDaemon(t *testing.T, c *testenv.Cluster, repo *testenv.GitRepo, tune func(*Options, *Repository)) (*Daemon, *statusLog, func()) {
	t.Helper()
	src, err := sources.New(sources.Options{Name: "platform", URL: "file://" + repo.Dir, Ref: sources.Ref{Branch: "main"}, CacheDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	statuses := &statusLog{}
	r := Repository{Name: "platform", Source: src, Interval: 200 * time.Millisecond, Prune: true}
	opts := Options{
		Config: c.Config, MetricsAddr: "0", ProbeAddr: "0", InstallCRDs: true,
		LeaderElectionNamespace: "kudod-system", StepTimeout: time.Minute, AllowClusterScoped: true,
		Logger: testr.NewWithOptions(t, testr.Options{Verbosity: 0}), Reporter: statuses,
	}
	if tune != nil {
		tune(&opts, &r)
	}
	opts.Repositories = []Repository{r}
	d, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- d.Start(ctx) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("daemon: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return d, statuses, stop
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		ok, why := cond()
		if ok {
			return
		}
		last = why
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s; last: %s", timeout, what, last)
}

// instance reads an Instance (nil if absent).
func getInstance(t *testing.T, c *testenv.Cluster, ns, name string) *v1alpha1.Instance {
	t.Helper()
	in := &v1alpha1.Instance{}
	if err := c.Client.Get(context.Background(), types.NamespacedName{Namespace: ns, Name: name}, in); err != nil {
		return nil
	}
	return in
}

// planDone waits until an Instance's last plan is name with status want for revision.
func planDone(t *testing.T, c *testenv.Cluster, ns, name, plan string, want v1alpha1.ExecutionStatus, revision string) *v1alpha1.Instance {
	t.Helper()
	var got *v1alpha1.Instance
	eventually(t, 60*time.Second, "plan "+plan+" of "+ns+"/"+name+" to be "+string(want), func() (bool, string) {
		got = getInstance(t, c, ns, name)
		if got == nil {
			return false, "no instance"
		}
		lp := got.Status.LastPlan
		if lp == nil {
			return false, "no plan yet"
		}
		ok := lp.Name == plan && lp.Status == want && (revision == "" || lp.Revision == revision)
		return ok, string(lp.Name) + " " + string(lp.Status) + " " + lp.Revision + " " + lp.Message
	})
	return got
}
