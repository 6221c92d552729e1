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
	"runtime"
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
	// Stopped now rather than when the test ends: `make bench` measures more after this run
	// (KUDOD_BENCH_SCALE), and a daemon polling on would weigh on those figures.
	if err := p.stop(); err != nil {
		t.Errorf("stopping kudod: %v", err)
	}
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
// repository root). With KUDOD_BENCH_SCALE (or KUDOD_BENCH_NOISY, KUDOD_BENCH_SHARD) set, the
// scale runs follow (scaleConfig), their keys after the others in the same JSON.
func BenchmarkDaemon(b *testing.B) {
	cfg := scaleFromEnv(b)
	sc := fullScenario()
	sc.instances = instancesFromEnv(b, sc.instances)
	bin := kudodBinary(b)
	res, _ := measure(b, sc, bin)
	res.printTable(os.Stdout)
	var extra []field
	if cfg.enabled() {
		began := time.Now()
		s := measureScale(b, bin, cfg)
		s.printTable(os.Stdout)
		extra = append(s.fields(), field{"scale_total_seconds", time.Since(began).Seconds()})
	}
	out, err := outputPath("BENCH_OUT", "bench-results.json")
	if err != nil {
		b.Fatal(err)
	}
	if err := writeReport(out, res, extra); err != nil {
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

// scaleHead is the JSON report's head when only the scale runs ran.
type scaleHead struct {
	Machine      Machine `json:"machine"`
	LoadAverage  string  `json:"load_average_at_start"`
	KudodVersion string  `json:"kudod_version"`
	Date         string  `json:"date"`
	TotalSeconds float64 `json:"total_seconds"`
}

// BenchmarkScale is `make bench-scale`: only the scale runs of BenchmarkDaemon (scaleConfig),
// as tables and as JSON in $BENCH_OUT (default bench-scale-results.json).
func BenchmarkScale(b *testing.B) {
	cfg := scaleFromEnv(b)
	if !cfg.enabled() {
		b.Fatal(errNoScale)
	}
	began := time.Now()
	machine, err := thisMachine()
	if err != nil {
		b.Fatal(err)
	}
	bin := kudodBinary(b)
	head := scaleHead{Machine: machine, LoadAverage: loadAverage(), KudodVersion: version(bin), Date: began.UTC().Format(time.RFC3339)}
	s := measureScale(b, bin, cfg)
	fmt.Printf("kudod %s; %d cores, %s; load average %s at the start\n", head.KudodVersion, machine.Cores, machine.CPUModel, head.LoadAverage)
	s.printTable(os.Stdout)
	head.TotalSeconds = time.Since(began).Seconds()
	fmt.Printf("took %s\n", time.Since(began).Round(time.Second))
	out, err := outputPath("BENCH_OUT", "bench-scale-results.json")
	if err != nil {
		b.Fatal(err)
	}
	if err := writeReport(out, head, s.fields()); err != nil {
		b.Fatal(err)
	}
	fmt.Printf("wrote %s\n", out)
}

// BenchmarkColdStartProfile is `make bench-profile`: P1 and P3 with `kudod run` inside the
// test binary, at KUDOD_BENCH_INSTANCES (1,000). It writes, beside $BENCH_PROFILE (default
// bench-cpu.pprof at the repository root):
//
//   - bench-cpu.pprof: the test binary's CPU during P1, the daemon's goroutines labelled
//     kudod=daemon (the tops printed are theirs), and bench-cpu-apiserver.pprof:
//     kube-apiserver's, from its /debug/pprof;
//   - bench-heap.pprof: the heap when P1 ends (in use, and allocated during P1; the harness's
//     share is small: its Instance watch and clients);
//   - bench-cpu-idle.pprof and bench-heap-idle.pprof: CPU over P3's window
//     (KUDOD_BENCH_IDLE, 1m; KUDOD_BENCH_DRIFT puts the drift checks in it) and the heap at
//     its end;
//
// and prints their top functions.
func BenchmarkColdStartProfile(b *testing.B) {
	// Sample the heap finer than the default one in 512 KiB: the daemon's heap is tens of MB.
	runtime.MemProfileRate = 16 << 10
	sc := fullScenario()
	sc.instances = instancesFromEnv(b, sc.instances)
	cfg := scaleFromEnv(b)
	sc.idle, sc.drift = cfg.idle, cfg.drift
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
	sibling := func(suffix string, heap bool) string {
		dir, base := filepath.Split(path)
		ext := filepath.Ext(base)
		stem := strings.TrimSuffix(base, ext)
		if heap {
			if h := strings.Replace(stem, "cpu", "heap", 1); h != stem {
				stem = h
			} else {
				stem += "-heap"
			}
		}
		return filepath.Join(dir, stem+suffix+ext)
	}
	apiPath, heapPath, idlePath, idleHeapPath := sibling("-apiserver", false), sibling("", true), sibling("-idle", false), sibling("-idle", true)
	// kube-apiserver profiles a fixed window: P1's length in the last run, about.
	window := max(5*time.Second, time.Duration(sc.instances)*30*time.Millisecond)
	apiProfile := make(chan error, 1)
	go func() { apiProfile <- profileAPIServer(context.Background(), bb.cluster.Config, window, apiPath) }()
	var d daemon
	cpuProfile(b, path, func() {
		d = bb.coldStart(func() daemon { return startInProcess(b, bb.setup) })
	})
	if err := <-apiProfile; err != nil {
		b.Fatal(err)
	}
	heapProfile(b, heapPath)
	fmt.Printf("P1 in process: %d instances in %.1f s, every Instance created at %.1f s, machine %.0f%% busy\n",
		sc.instances, bb.res.P1Seconds, bb.res.P1InstancesCreatedSeconds, 100*bb.res.P1MachineBusy)
	cpuProfile(b, idlePath, func() { bb.idle(os.Getpid()) })
	heapProfile(b, idleHeapPath)
	fmt.Printf("P3 in process (the harness included): %.1f ms CPU per poll over %d polls, peak RSS %.0f MB\n",
		1000*bb.res.P3CPUSecondsPerPoll, bb.res.P3Polls, bb.res.P3RSSMB)
	if err := d.stop(); err != nil {
		b.Errorf("stopping kudod: %v", err)
	}
	// The daemon's samples only: the harness scrapes kube-apiserver's metrics in the window.
	daemonOnly := "-tagfocus=" + daemonLabel + "=daemon"
	tops := []struct {
		path string
		args [][]string
	}{
		{path, [][]string{{"-top", daemonOnly, "-nodecount=25"}, {"-top", "-cum", daemonOnly, "-nodecount=50"}}},
		{apiPath, [][]string{{"-top", "-nodecount=25"}, {"-top", "-cum", "-nodecount=50"}}},
		{heapPath, [][]string{{"-top", "-nodecount=25", "-sample_index=inuse_space"}, {"-top", "-nodecount=25", "-sample_index=alloc_space"}}},
		{idlePath, [][]string{{"-top", daemonOnly, "-nodecount=25"}, {"-top", "-cum", daemonOnly, "-nodecount=40"}}},
		{idleHeapPath, [][]string{{"-top", "-nodecount=25", "-sample_index=inuse_space"}}},
	}
	for _, p := range tops {
		fmt.Printf("== %s\n", p.path)
		for _, args := range p.args {
			out, err := exec.Command("go", append(append([]string{"tool", "pprof"}, args...), p.path)...).CombinedOutput()
			if err != nil {
				b.Logf("go tool pprof: %v", err)
			}
			fmt.Printf("%s\n", out)
		}
	}
	b.ReportMetric(bb.res.P1Seconds, "p1-s")
}

// cpuProfile writes a CPU profile of this process while f runs to path.
func cpuProfile(t testing.TB, path string, f func()) {
	t.Helper()
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := pprof.StartCPUProfile(out); err != nil {
		t.Fatal(err)
	}
	defer pprof.StopCPUProfile()
	f()
}

// heapProfile writes this process's heap profile to path, after a collection so that "in
// use" is up to date.
func heapProfile(t testing.TB, path string) {
	t.Helper()
	runtime.GC()
	out, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	if err := pprof.Lookup("heap").WriteTo(out, 0); err != nil {
		t.Fatal(err)
	}
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
