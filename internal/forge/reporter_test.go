package forge

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/funcr"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// statusForge is a GitHub that records the statuses it accepts, in order, and can hold
// requests until released.
type statusForge struct {
	t       *testing.T
	srv     *httptest.Server
	gate    chan struct{} // nil: answer at once; else each request waits for a value
	arrived chan string   // each request's context, as it arrives
	code    int

	mu     sync.Mutex
	posted []string // context state description
}

func newStatusForge(t *testing.T, gated bool) *statusForge {
	f := &statusForge{t: t, arrived: make(chan string, 100), code: http.StatusCreated}
	if gated {
		f.gate = make(chan struct{})
	}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := (&recorder{}).add(t, r)
		f.arrived <- fmt.Sprint(req.Body["context"])
		if f.gate != nil {
			select {
			case <-f.gate:
			case <-r.Context().Done():
				return
			}
		}
		if f.code != http.StatusCreated {
			w.WriteHeader(f.code)
			fmt.Fprint(w, `{"message":"nope"}`)
			return
		}
		f.mu.Lock()
		f.posted = append(f.posted, fmt.Sprintf("%s %s %s", req.Body["context"], req.Body["state"], req.Body["description"]))
		f.mu.Unlock()
		w.WriteHeader(http.StatusCreated)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *statusForge) statuses() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.posted...)
}

// await waits until the forge has accepted n statuses.
func (f *statusForge) await(n int) []string {
	f.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if got := f.statuses(); len(got) >= n {
			return got
		}
		time.Sleep(5 * time.Millisecond)
	}
	f.t.Fatalf("the forge accepted %v, want %d statuses", f.statuses(), n)
	return nil
}

// awaitArrival waits for the next request to reach the forge.
func (f *statusForge) awaitArrival() string {
	f.t.Helper()
	select {
	case c := <-f.arrived:
		return c
	case <-time.After(30 * time.Second):
		f.t.Fatal("no request reached the forge within 30s")
		return ""
	}
}

type testReporter struct {
	*Reporter
	reg    *prometheus.Registry
	logs   *bytes.Buffer
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

// startReporter runs a reporter for repository "platform" on f until the test ends.
func startReporter(t *testing.T, f *statusForge, opts ReporterOptions) *testReporter {
	t.Helper()
	p, _ := testProvider(t, githubStatus(f.srv.URL, tokenFile(t, token)))
	reg := prometheus.NewRegistry()
	var mu sync.Mutex
	logs := &bytes.Buffer{}
	opts.Providers = map[string]Provider{"platform": p}
	opts.Registerer = reg
	opts.Logger = funcr.New(func(prefix, args string) {
		mu.Lock()
		defer mu.Unlock()
		fmt.Fprintln(logs, prefix, args)
	}, funcr.Options{Verbosity: 1})
	r, err := NewReporter(opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	tr := &testReporter{Reporter: r, reg: reg, logs: logs, cancel: cancel, done: make(chan error, 1)}
	go func() { tr.done <- r.Start(ctx) }()
	t.Cleanup(func() { tr.stop(t) })
	return tr
}

// stop ends Start and waits for it to return.
func (r *testReporter) stop(t *testing.T) {
	t.Helper()
	r.cancel()
	r.once.Do(func() {
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("Start: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Start did not return within 30s of its context's end")
		}
	})
}

func st(context string, state State, description string) Status {
	return Status{Repository: "platform", SHA: shaA, Context: context, State: state, Description: description}
}

func TestReporterPostsInOrderWithoutDuplicates(t *testing.T) {
	f := newStatusForge(t, false)
	r := startReporter(t, f, ReporterOptions{})
	// Each duplicate is followed by a status of another context and awaited through it: the
	// worker posts in order, so a posted duplicate would come first.
	r.Report(st("kudod/ns/a", StatePending, "deploy plan IN_PROGRESS"))
	f.await(1)
	r.Report(st("kudod/ns/a", StatePending, "deploy plan IN_PROGRESS")) // the forge shows it already
	r.Report(st("kudod/ns/b", StateFailure, "rejected: unknown parameter FOO"))
	f.await(2)
	r.Report(st("kudod/ns/a", StateSuccess, "deploy plan COMPLETE"))
	f.await(3)
	r.Report(st("kudod/ns/a", StateSuccess, "deploy plan COMPLETE")) // again
	r.Report(st("kudod/ns/c", StateSuccess, "deploy plan COMPLETE"))
	f.await(4)
	r.Report(st("kudod/ns/a", StatePending, "deploy plan IN_PROGRESS")) // a re-run: the forge shows success
	f.await(5)
	r.Report(st("kudod/ns/a", StatePending, "deploy plan IN_PROGRESS (2/3 steps)")) // same state, news
	got := f.await(6)
	want := []string{
		"kudod/ns/a pending deploy plan IN_PROGRESS",
		"kudod/ns/b failure rejected: unknown parameter FOO",
		"kudod/ns/a success deploy plan COMPLETE",
		"kudod/ns/c success deploy plan COMPLETE",
		"kudod/ns/a pending deploy plan IN_PROGRESS",
		"kudod/ns/a pending deploy plan IN_PROGRESS (2/3 steps)",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("posted\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	for state, n := range map[string]float64{"pending": 3, "success": 2, "failure": 1} {
		if got := value(r.metrics.posts.WithLabelValues("platform", state)); got != n {
			t.Errorf("posts{state=%s} = %v, want %v", state, got, n)
		}
	}
}

func TestReporterDropsTheOldestOfAllRepositories(t *testing.T) {
	f := newStatusForge(t, true)
	var providers []Provider
	for range 2 {
		p, _ := testProvider(t, githubStatus(f.srv.URL, tokenFile(t, token)))
		providers = append(providers, p)
	}
	r, err := NewReporter(ReporterOptions{Providers: map[string]Provider{"platform": providers[0], "apps": providers[1]}, QueueSize: 2, DrainTimeout: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()
	defer func() { cancel(); <-done }()

	r.Report(Status{Repository: "platform", SHA: shaA, Context: "kudod/ns/busy", State: StatePending})
	r.Report(Status{Repository: "apps", SHA: shaA, Context: "kudod/ns/busy", State: StatePending})
	f.awaitArrival()
	f.awaitArrival()                                                                                // both workers are busy
	r.Report(Status{Repository: "apps", SHA: shaA, Context: "kudod/ns/x", State: StatePending})     // oldest
	r.Report(Status{Repository: "platform", SHA: shaA, Context: "kudod/ns/y", State: StatePending}) // kept
	r.Report(Status{Repository: "apps", SHA: shaA, Context: "kudod/ns/z", State: StatePending})     // kept
	if a, p := value(r.metrics.dropped.WithLabelValues("apps")), value(r.metrics.dropped.WithLabelValues("platform")); a != 1 || p != 0 {
		t.Errorf("dropped apps=%v platform=%v, want apps' oldest status only", a, p)
	}
}

func TestReporterDropsTheOldestWhenFullAndKeepsOrder(t *testing.T) {
	f := newStatusForge(t, true)
	r := startReporter(t, f, ReporterOptions{QueueSize: 3})

	r.Report(st("kudod/ns/first", StatePending, "in flight"))
	if c := f.awaitArrival(); c != "kudod/ns/first" {
		t.Fatalf("first request for %s", c)
	}
	// The worker is busy: these wait in the queue of 3.
	r.Report(st("kudod/ns/a", StatePending, "a running"))  // dropped
	r.Report(st("kudod/ns/b", StatePending, "b running"))  // replaced by b's success, then dropped
	r.Report(st("kudod/ns/c", StatePending, "c running"))  // replaced by c's success
	r.Report(st("kudod/ns/b", StateSuccess, "b complete")) // takes b's place
	r.Report(st("kudod/ns/c", StateSuccess, "c complete")) // takes c's place
	r.Report(st("kudod/ns/d", StatePending, "d running"))  // the queue is full: a goes
	r.Report(st("kudod/ns/e", StatePending, "e running"))  // b goes
	if n := value(r.metrics.depth); n != 3 {
		t.Errorf("queue depth %v, want 3", n)
	}
	if n := value(r.metrics.dropped.WithLabelValues("platform")); n != 2 {
		t.Errorf("dropped %v, want 2", n)
	}
	close(f.gate)
	got := f.await(4)
	want := []string{
		"kudod/ns/first pending in flight",
		"kudod/ns/c success c complete",
		"kudod/ns/d pending d running",
		"kudod/ns/e pending e running",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("posted\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	deadline := time.Now().Add(30 * time.Second)
	for value(r.metrics.depth) != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := value(r.metrics.depth); n != 0 {
		t.Errorf("queue depth %v after posting everything, want 0", n)
	}
	if !strings.Contains(r.logs.String(), "queue is full") {
		t.Errorf("no log of the dropped statuses:\n%s", r.logs)
	}
}

func TestReporterNeverBlocks(t *testing.T) {
	f := newStatusForge(t, true) // the forge never answers until the test ends
	r := startReporter(t, f, ReporterOptions{QueueSize: 10, DrainTimeout: 50 * time.Millisecond})
	done := make(chan struct{})
	go func() {
		for i := range 1000 {
			r.Report(st(fmt.Sprintf("kudod/ns/i%d", i), StatePending, "x"))
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Report blocked on a forge that does not answer")
	}
	if n := value(r.metrics.depth); n != 10 {
		t.Errorf("queue depth %v, want the bound, 10", n)
	}
}

func TestReporterCountsFailuresAndLogsWithoutTheToken(t *testing.T) {
	f := newStatusForge(t, false)
	f.code = http.StatusUnprocessableEntity
	r := startReporter(t, f, ReporterOptions{})
	r.Report(st("kudod/ns/a", StateFailure, "broken"))
	deadline := time.Now().Add(30 * time.Second)
	for value(r.metrics.failures.WithLabelValues("platform")) < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := value(r.metrics.failures.WithLabelValues("platform")); n != 1 {
		t.Fatalf("failures %v, want 1", n)
	}
	r.stop(t)
	logs := r.logs.String()
	if !strings.Contains(logs, "posting a commit status") || !strings.Contains(logs, "422") {
		t.Errorf("the failure is not logged:\n%s", logs)
	}
	if strings.Contains(logs, token) {
		t.Errorf("the token is in the logs:\n%s", logs)
	}
}

func TestReporterLogsStatusesOfRepositoriesWithoutAForge(t *testing.T) {
	f := newStatusForge(t, false)
	r := startReporter(t, f, ReporterOptions{})
	r.Report(Status{Repository: "elsewhere", SHA: shaB, Context: "kudod/ns/x", State: StateSuccess, Description: "done"})
	r.Report(st("kudod/ns/a", StateSuccess, "done"))
	if got := f.await(1); len(got) != 1 || got[0] != "kudod/ns/a success done" {
		t.Errorf("posted %v, want only platform's status", got)
	}
	if !strings.Contains(r.logs.String(), `"repository"="elsewhere"`) {
		t.Errorf("the status without a forge is not logged:\n%s", r.logs)
	}
}

func TestReporterDrainsAtShutdown(t *testing.T) {
	f := newStatusForge(t, true)
	r := startReporter(t, f, ReporterOptions{DrainTimeout: time.Minute})
	r.Report(st("kudod/ns/a", StatePending, "a"))
	f.awaitArrival()
	r.Report(st("kudod/ns/b", StatePending, "b"))
	r.Report(st("kudod/ns/c", StatePending, "c"))
	r.cancel()    // kudod stops...
	close(f.gate) // ...and what was queued still lands
	r.stop(t)
	if got := f.statuses(); len(got) != 3 {
		t.Errorf("posted %v after shutdown, want all 3", got)
	}
	r.Report(st("kudod/ns/d", StatePending, "d")) // after Start returned
	if n := value(r.metrics.dropped.WithLabelValues("platform")); n != 1 {
		t.Errorf("dropped %v, want 1: the status reported after shutdown", n)
	}
}

func TestReporterDrainEndsAtItsDeadline(t *testing.T) {
	f := newStatusForge(t, true) // never answers
	r := startReporter(t, f, ReporterOptions{DrainTimeout: 100 * time.Millisecond})
	r.Report(st("kudod/ns/a", StatePending, "a"))
	f.awaitArrival()
	r.Report(st("kudod/ns/b", StatePending, "b"))
	r.Report(st("kudod/ns/c", StatePending, "c"))
	r.stop(t) // returns once the drain timeout cancels the hanging post
	if n := value(r.metrics.dropped.WithLabelValues("platform")); n != 2 {
		t.Errorf("dropped %v, want the 2 queued statuses", n)
	}
	if n := value(r.metrics.failures.WithLabelValues("platform")); n != 1 {
		t.Errorf("failures %v, want the 1 post cut short", n)
	}
	if n := value(r.metrics.depth); n != 0 {
		t.Errorf("queue depth %v, want 0", n)
	}
}

func TestReporterMetricsAreRegistered(t *testing.T) {
	f := newStatusForge(t, false)
	r := startReporter(t, f, ReporterOptions{})
	r.Report(st("kudod/ns/a", StateSuccess, "done"))
	f.await(1)
	deadline := time.Now().Add(30 * time.Second)
	for value(r.metrics.posts.WithLabelValues("platform", "success")) < 1 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	r.metrics.failures.WithLabelValues("platform")
	r.metrics.dropped.WithLabelValues("platform")
	families, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, mf := range families {
		for _, m := range mf.GetMetric() {
			var labels []string
			for _, l := range m.GetLabel() {
				labels = append(labels, l.GetName()+"="+l.GetValue())
			}
			got[mf.GetName()+"{"+strings.Join(labels, ",")+"}"] = fmt.Sprint(m.GetCounter().GetValue() + m.GetGauge().GetValue())
		}
	}
	want := map[string]string{
		"kudod_commit_status_posts_total{repository=platform,state=success}": "1",
		"kudod_commit_status_failures_total{repository=platform}":            "0",
		"kudod_commit_status_dropped_total{repository=platform}":             "0",
		"kudod_commit_status_queue_depth{}":                                  "0",
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("gathered %v, want %v", got, want)
	}
	// A second reporter on the same registry is refused, not silently unmeasured.
	if _, err := NewReporter(ReporterOptions{Registerer: r.reg, Logger: logr.Discard()}); err == nil {
		t.Error("a second reporter registered the same metrics")
	}
}

// value reads a counter or gauge.
func value(c prometheus.Metric) float64 {
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		panic(err)
	}
	return m.GetCounter().GetValue() + m.GetGauge().GetValue()
}

// A forge that fails for a while (502s, past the provider's retries) loses no status: what was
// reported meanwhile is posted once it answers again, in order, a newer status of a commit
// and context taking the place of the older one; a refusal (422) is not tried again.
func TestReporterKeepsStatusesThroughAForgeOutage(t *testing.T) {
	var down atomic.Bool
	var mu sync.Mutex
	var posted []string
	attempts := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		req := (&recorder{}).add(t, r)
		line := fmt.Sprintf("%s %s %s", req.Body["context"], req.Body["state"], req.Body["description"])
		mu.Lock()
		defer mu.Unlock()
		attempts[line]++
		switch {
		case strings.Contains(line, "refused"):
			w.WriteHeader(http.StatusUnprocessableEntity)
		case down.Load():
			w.WriteHeader(http.StatusBadGateway)
		default:
			posted = append(posted, line)
			w.WriteHeader(http.StatusCreated)
		}
	}))
	t.Cleanup(srv.Close)
	p, _ := testProvider(t, githubStatus(srv.URL, tokenFile(t, token)))
	r, err := NewReporter(ReporterOptions{Providers: map[string]Provider{"platform": p}, Logger: logr.Discard(), RetryPauseMin: 10 * time.Millisecond, RetryPauseMax: 40 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Start(ctx) }()
	defer func() { cancel(); <-done }()

	down.Store(true)
	r.Report(st("kudod/ns/a", StatePending, "a running"))
	waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return attempts["kudod/ns/a pending a running"] >= 6 })
	r.Report(st("kudod/ns/b", StatePending, "b running"))
	r.Report(st("kudod/ns/x", StateFailure, "refused"))
	r.Report(st("kudod/ns/a", StateSuccess, "a complete")) // takes the place of a's pending
	r.Report(st("kudod/ns/b", StateFailure, "b failed"))   // and b's
	r.Report(st("kudod/ns/c", StateSuccess, "c complete"))
	time.Sleep(200 * time.Millisecond) // several failed tries; the refusal is dropped at once
	if n := value(r.metrics.depth); n != 3 {
		t.Errorf("queue depth %v during the outage, want 3", n)
	}
	down.Store(false)
	waitUntil(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(posted) >= 3 })
	time.Sleep(50 * time.Millisecond)
	mu.Lock()
	got, refusals := append([]string(nil), posted...), attempts["kudod/ns/x failure refused"]
	mu.Unlock()
	want := []string{"kudod/ns/a success a complete", "kudod/ns/b failure b failed", "kudod/ns/c success c complete"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("posted\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if refusals != 1 {
		t.Errorf("a refused status was sent %d times, want once", refusals)
	}
	if n := value(r.metrics.dropped.WithLabelValues("platform")); n != 0 {
		t.Errorf("dropped %v statuses", n)
	}
	if n := value(r.metrics.depth); n != 0 {
		t.Errorf("queue depth %v after the outage", n)
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 30s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A status that replaces a waiting one waits in its own place: the forge receives what was
// reported, in the order reported, less what was replaced (b's failure, reported after a's
// success, is posted after it although b's pending waited before).
func TestReporterPostsInTheOrderReported(t *testing.T) {
	f := newStatusForge(t, true)
	r := startReporter(t, f, ReporterOptions{})
	r.Report(st("kudod/ns/first", StatePending, "in flight"))
	f.awaitArrival()
	r.Report(st("kudod/ns/b", StatePending, "b running"))
	r.Report(st("kudod/ns/a", StateSuccess, "a complete"))
	r.Report(st("kudod/ns/b", StateFailure, "b failed"))
	close(f.gate)
	got := f.await(3)
	want := []string{"kudod/ns/first pending in flight", "kudod/ns/a success a complete", "kudod/ns/b failure b failed"}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("posted\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
