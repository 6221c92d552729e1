// Package bench is `make bench`: kudod's four headline figures (issue 8) measured side by side
// in one run against envtest's kube-apiserver, with the real kudod binary in a process of its
// own and a real git server.
//
//   - P1 cold start: a repository of N instances of a 4-object operator; kudod's start to every
//     deploy plan COMPLETE, and the ceiling: a bare client server-side applying the same
//     objects at the daemon's QPS, burst and write concurrency.
//   - P2 latency: push → update plan COMPLETE for a one-parameter change, by polling and
//     through the webhook.
//   - P3 idle: the daemon's CPU per poll, peak memory, API writes and git fetches.
//   - P4: `kudod plan` between two commits of the N-instance repository.
//
// BenchmarkDaemon is the full run (N=1,000; `make bench`), TestSmoke a small one (N=10) that
// `make test` runs so the harness keeps working, BenchmarkColdStartProfile a CPU profile of
// P1 with the daemon in the test binary.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/kudod-dev/kudod/test/testenv"
)

func TestMain(m *testing.M) {
	// The harness's controller-runtime clients log nothing worth reading; without a logger,
	// controller-runtime prints a warning with a stack trace into the benchmark's output.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(testenv.Main(m))
}

// measure runs every phase of a scenario with the kudod binary and returns the figures, and
// why the webhook was not measured (nil when it was).
func measure(t testing.TB, sc scenario, bin string) (*Results, error) {
	t.Helper()
	began := time.Now()
	b := newBench(t, sc)
	res := b.res
	res.KudodVersion = version(bin)
	res.Date = began.UTC().Format(time.RFC3339)
	res.LoadAverage = loadAverage()

	// The ceiling first, while no daemon runs: nothing else competes with it for the API
	// server, and nothing the daemon may still be doing after P1 (events it sends late)
	// lowers it.
	b.ceiling()
	var p *kudodProcess
	b.coldStart(func() daemon { p = startProcess(t, bin, b.setup); return p })
	u, err := processUsage(p.pid())
	if err != nil {
		t.Fatal(err)
	}
	res.P1DaemonCPUSeconds = u.cpu.Seconds()
	if res.P1DaemonRequests, err = scrapeClientRequests(context.Background(), b.setup.metricsAddr); err != nil {
		t.Fatal(err)
	}
	res.P1RateRatio = res.P1ObjectsPerSecond / res.P1CeilingObjectsPerSecond

	if res.P2PollSamplesSeconds, err = b.latency(p, false); err != nil {
		t.Fatalf("P2 (poll): %v", err)
	}
	res.P2PollP50Seconds = median(res.P2PollSamplesSeconds)
	webhook, webhookErr := b.latency(p, true)
	if webhookErr == nil {
		res.P2WebhookSamplesSeconds = webhook
		p50 := median(webhook)
		res.P2WebhookP50Seconds = &p50
	} else {
		res.P2WebhookNote = webhookErr.Error()
	}
	if err := b.checkDeployed(b.refs[0], b.lastValue); err != nil {
		t.Fatalf("P2: %v", err)
	}

	b.idle(p.pid())
	b.planDiff(bin)
	res.TotalSeconds = time.Since(began).Seconds()
	res.judge()
	return res, webhookErr
}

// instancesFromEnv is $KUDOD_BENCH_INSTANCES, else def: a smaller N while working on kudod.
func instancesFromEnv(t testing.TB, def int) int {
	s := os.Getenv("KUDOD_BENCH_INSTANCES")
	if s == "" {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 {
		t.Fatalf("KUDOD_BENCH_INSTANCES=%q: want a positive number", s)
	}
	return n
}

// BenchmarkDaemon is `make bench`: every figure once (it ignores b.N: one run is minutes),
// printed as a table and written as JSON to $BENCH_OUT (default bench-results.json at the
// repository root).
func BenchmarkDaemon(b *testing.B) {
	sc := fullScenario()
	sc.instances = instancesFromEnv(b, sc.instances)
	res, _ := measure(b, sc, kudodBinary(b))
	res.printTable(os.Stdout)
	out, err := outputPath()
	if err != nil {
		b.Fatal(err)
	}
	if err := res.writeJSON(out); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("wrote %s\n", out)
	b.ReportMetric(res.P1Seconds, "p1-s")
	b.ReportMetric(res.P1CeilingSeconds, "p1-ceiling-s")
	b.ReportMetric(res.P2PollP50Seconds, "p2-poll-s")
	if res.P2WebhookP50Seconds != nil {
		b.ReportMetric(*res.P2WebhookP50Seconds, "p2-webhook-s")
	}
	b.ReportMetric(1000*res.P3CPUSecondsPerPoll, "p3-cpu-ms/poll")
	b.ReportMetric(res.P3RSSMB, "p3-rss-MB")
	b.ReportMetric(1000*res.P4Seconds, "p4-ms")
}

// BenchmarkColdStartProfile runs P1 with `kudod run` inside the test binary and writes two
// CPU profiles of the P1 window: the daemon's (with the harness's Instance watch) to
// $BENCH_PROFILE (default bench-cpu.pprof at the repository root) and kube-apiserver's, from
// its /debug/pprof, beside it with an -apiserver suffix; then prints their top functions.
func BenchmarkColdStartProfile(b *testing.B) {
	sc := fullScenario()
	sc.instances = instancesFromEnv(b, sc.instances)
	bb := newBench(b, sc)
	path := os.Getenv("BENCH_PROFILE")
	if path == "" {
		path = "bench-cpu.pprof"
	}
	if !filepath.IsAbs(path) {
		root, err := repoRoot()
		if err != nil {
			b.Fatal(err)
		}
		path = filepath.Join(root, path)
	}
	apiPath := strings.TrimSuffix(path, filepath.Ext(path)) + "-apiserver" + filepath.Ext(path)
	f, err := os.Create(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	// kube-apiserver profiles a fixed window: P1's length in the last run, about.
	window := max(5*time.Second, time.Duration(sc.instances)*30*time.Millisecond)
	apiProfile := make(chan error, 1)
	go func() { apiProfile <- profileAPIServer(context.Background(), bb.cluster.Config, window, apiPath) }()
	if err := pprof.StartCPUProfile(f); err != nil {
		b.Fatal(err)
	}
	bb.coldStart(func() daemon { return startInProcess(b, bb.setup) })
	pprof.StopCPUProfile()
	if err := <-apiProfile; err != nil {
		b.Fatal(err)
	}
	fmt.Printf("P1 in process: %d instances in %.1f s, every Instance created at %.1f s, machine %.0f%% busy\n",
		sc.instances, bb.res.P1Seconds, bb.res.P1InstancesCreatedSeconds, 100*bb.res.P1MachineBusy)
	for _, p := range []string{path, apiPath} {
		fmt.Printf("== %s\n", p)
		for _, args := range [][]string{{"-top", "-nodecount=25"}, {"-top", "-cum", "-nodecount=50"}} {
			out, err := exec.Command("go", append(append([]string{"tool", "pprof"}, args...), p)...).CombinedOutput()
			if err != nil {
				b.Logf("go tool pprof: %v", err)
			}
			fmt.Printf("%s\n", out)
		}
	}
	b.ReportMetric(bb.res.P1Seconds, "p1-s")
}

// TestSmoke runs every phase with 10 instances, a 1 s interval and a few seconds idle, and
// checks that every figure was measured and is sane, that an idle daemon neither writes to
// the API server nor fetches from git, and that the JSON report has the contract's keys.
// Speed is not judged here: that is BenchmarkDaemon's job.
func TestSmoke(t *testing.T) {
	testenv.APIServer(t) // first: in -short mode it skips, before kudod is built
	sc := smokeScenario()
	res, webhookErr := measure(t, sc, kudodBinary(t))
	var buf strings.Builder
	res.printTable(&buf)
	t.Log("\n" + buf.String())

	positive := map[string]float64{
		"p1_seconds": res.P1Seconds, "p1_ceiling_seconds": res.P1CeilingSeconds,
		"p2_poll_p50_seconds": res.P2PollP50Seconds, "p3_rss_mb": res.P3RSSMB, "p4_seconds": res.P4Seconds,
		"p1_rate_ratio": res.P1RateRatio, "p3_window_seconds": res.P3WindowSeconds,
	}
	for k, v := range positive {
		if !(v > 0) {
			t.Errorf("%s = %v, want a measured positive figure", k, v)
		}
	}
	if res.P3CPUSecondsPerPoll < 0 || res.P3Polls < 1 {
		t.Errorf("P3: %v CPU seconds per poll over %d polls", res.P3CPUSecondsPerPoll, res.P3Polls)
	}
	// A poll-triggered change lands within an interval plus the plan; a minute is far beyond.
	if res.P2PollP50Seconds > sc.interval.Seconds()+60 {
		t.Errorf("P2 poll p50 %.1f s with a %s interval", res.P2PollP50Seconds, sc.interval)
	}
	if len(res.P2PollSamplesSeconds) != sc.latencySamples || len(res.P4SamplesSeconds) != sc.planRuns {
		t.Errorf("samples: %d poll latencies, %d plan runs", len(res.P2PollSamplesSeconds), len(res.P4SamplesSeconds))
	}
	switch {
	case webhookErr == nil && (res.P2WebhookP50Seconds == nil || len(res.P2WebhookSamplesSeconds) != sc.latencySamples):
		t.Errorf("P2 webhook: %v p50 from %d samples", res.P2WebhookP50Seconds, len(res.P2WebhookSamplesSeconds))
	case errors.Is(webhookErr, errWebhookNotServed):
		// The receiver is not in the daemon yet: the figure is null with a note, not faked.
		t.Logf("P2 webhook not measured: %v", webhookErr)
	case webhookErr != nil:
		t.Errorf("P2 webhook: the daemon answered the delivery but not as its contract says: %v", webhookErr)
	}
	if res.P3APIWrites != 0 {
		t.Errorf("P3: an idle daemon made %d API writes: %v", res.P3APIWrites, res.P3APIWritesBy)
	}
	if res.P3GitFetches != 0 {
		t.Errorf("P3: an idle daemon fetched %d times", res.P3GitFetches)
	}
	if res.P1APIWrites["APPLY configmaps"] < int64(sc.instances) {
		t.Errorf("P1: %v API writes, want at least one ConfigMap apply per instance", res.P1APIWrites)
	}
	if res.Machine.Cores < 1 || res.Machine.CPUModel == "" {
		t.Errorf("machine %+v", res.Machine)
	}

	path := filepath.Join(t.TempDir(), "bench-results.json")
	if err := res.writeJSON(path); err != nil {
		t.Fatal(err)
	}
	checkReportKeys(t, path, webhookErr == nil)
}

// checkReportKeys checks that the JSON report has every key of issue 8's contract, with the
// webhook figure null exactly when it was not measured.
func checkReportKeys(t *testing.T, path string, webhookMeasured bool) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var report map[string]json.RawMessage
	if err := json.Unmarshal(data, &report); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for _, k := range []string{"p1_seconds", "p1_ceiling_seconds", "p2_webhook_p50_seconds", "p2_poll_p50_seconds", "p2_poll_interval_seconds",
		"p3_cpu_seconds_per_poll", "p3_rss_mb", "p3_api_writes", "p3_git_fetches", "p4_seconds", "machine"} {
		v, ok := report[k]
		switch {
		case !ok:
			t.Errorf("%s has no %q", path, k)
		case string(v) == "null" && (k != "p2_webhook_p50_seconds" || webhookMeasured):
			t.Errorf("%s: %q is null", path, k)
		}
	}
	if webhookMeasured == (string(report["p2_webhook_p50_seconds"]) == "null") {
		t.Errorf("%s: p2_webhook_p50_seconds is %s, measured: %v", path, report["p2_webhook_p50_seconds"], webhookMeasured)
	}
	var machine map[string]any
	if err := json.Unmarshal(report["machine"], &machine); err != nil || machine["cores"] == nil || machine["cpu_model"] == nil {
		t.Errorf("%s: machine is %s", path, report["machine"])
	}
}
