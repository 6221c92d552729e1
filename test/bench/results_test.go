package bench

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Results are the benchmark's figures. The first eleven keys are the contract of issue 8
// (README, bench-results.json); the others explain them.
type Results struct {
	P1Seconds             float64  `json:"p1_seconds"`
	P1CeilingSeconds      float64  `json:"p1_ceiling_seconds"`
	P2WebhookP50Seconds   *float64 `json:"p2_webhook_p50_seconds"`
	P2PollP50Seconds      float64  `json:"p2_poll_p50_seconds"`
	P2PollIntervalSeconds float64  `json:"p2_poll_interval_seconds"`
	P3CPUSecondsPerPoll   float64  `json:"p3_cpu_seconds_per_poll"`
	P3RSSMB               float64  `json:"p3_rss_mb"`
	P3APIWrites           int64    `json:"p3_api_writes"`
	P3GitFetches          int64    `json:"p3_git_fetches"`
	P4Seconds             float64  `json:"p4_seconds"`
	Machine               Machine  `json:"machine"`

	Instances int `json:"instances"`
	Objects   int `json:"objects"`
	// P1ObjectsPerSecond and P1CeilingObjectsPerSecond are objects/s; P1RateRatio is kudod's
	// rate over the ceiling's.
	P1ObjectsPerSecond        float64 `json:"p1_objects_per_second"`
	P1CeilingObjectsPerSecond float64 `json:"p1_ceiling_objects_per_second"`
	P1RateRatio               float64 `json:"p1_rate_ratio"`
	P1DaemonCPUSeconds        float64 `json:"p1_daemon_cpu_seconds"`
	// P1APIServerCPUSeconds and P1CeilingAPIServerCPUSeconds are kube-apiserver's CPU time
	// during P1 and during the ceiling (etcd's is not included).
	P1APIServerCPUSeconds        float64 `json:"p1_apiserver_cpu_seconds"`
	P1CeilingAPIServerCPUSeconds float64 `json:"p1_ceiling_apiserver_cpu_seconds"`
	// P1MachineBusy is the fraction of all cores' time that was busy during P1: near 1, the
	// machine (API server, etcd, kudod together) was the limit.
	P1MachineBusy        float64 `json:"p1_machine_cpu_busy"`
	P1CeilingMachineBusy float64 `json:"p1_ceiling_machine_cpu_busy"`
	// P1InstancesCreatedSeconds is when the last Instance object appeared (the poller's part).
	P1InstancesCreatedSeconds float64 `json:"p1_instances_created_seconds"`
	// P1HalfCompleteSeconds and P1P99CompleteSeconds are when half and 99 % of the deploy
	// plans were COMPLETE: the gap between the 99 % and P1 is the tail of the slowest plans.
	P1HalfCompleteSeconds float64 `json:"p1_half_complete_seconds"`
	P1P99CompleteSeconds  float64 `json:"p1_p99_complete_seconds"`
	// P1APIWrites are the API server's write requests during P1 (kudod's and nobody else's),
	// by verb and resource; P1CeilingAPIWrites the same for the ceiling client.
	P1APIWrites        map[string]int64 `json:"p1_api_writes"`
	P1CeilingAPIWrites map[string]int64 `json:"p1_ceiling_api_writes"`
	// P1DaemonRequests are the daemon's own client-side counts (rest_client_requests_total) by
	// method, reads included.
	P1DaemonRequests map[string]int64 `json:"p1_daemon_requests"`

	P2PollSamplesSeconds    []float64 `json:"p2_poll_samples_seconds"`
	P2WebhookSamplesSeconds []float64 `json:"p2_webhook_samples_seconds"`
	// P2WebhookNote says why there is no webhook figure.
	P2WebhookNote string `json:"p2_webhook_note,omitempty"`

	P3WindowSeconds float64          `json:"p3_window_seconds"`
	P3Polls         int64            `json:"p3_polls"`
	P3CPUSeconds    float64          `json:"p3_cpu_seconds"`
	P3RSSIdleMB     float64          `json:"p3_rss_idle_mb"`
	P3APIWritesBy   map[string]int64 `json:"p3_api_writes_by_resource"`

	P4SamplesSeconds []float64 `json:"p4_samples_seconds"`

	// LoadAverage is /proc/loadavg's 1, 5 and 15 minute averages when the run started: the
	// machine is shared, and other work on it lowers every figure.
	LoadAverage  string   `json:"load_average_at_start"`
	GoalsMissed  []string `json:"goals_missed"`
	KudodVersion string   `json:"kudod_version"`
	Date         string   `json:"date"`
	TotalSeconds float64  `json:"total_seconds"`
}

// Machine is where the figures come from.
type Machine struct {
	Cores    int    `json:"cores"`
	CPUModel string `json:"cpu_model"`
}

// thisMachine reads the CPU model from /proc/cpuinfo; cores are those this process may use.
func thisMachine() (Machine, error) {
	m := Machine{Cores: runtime.NumCPU()}
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return m, err
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			m.CPUModel = strings.TrimSpace(v)
			return m, nil
		}
	}
	return m, errors.New("/proc/cpuinfo names no model")
}

// loadAverage is the first three fields of /proc/loadavg.
func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(data))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// goal is one of issue 8's targets.
type goal struct {
	name string
	met  bool
}

// goals judges the figures against issue 8's targets.
func (r *Results) goals() []goal {
	webhook := goal{name: "P2 webhook < 1 s (not measured)"}
	if r.P2WebhookP50Seconds != nil {
		webhook = goal{name: "P2 webhook < 1 s", met: *r.P2WebhookP50Seconds < 1}
	}
	return []goal{
		{"P1 < 30 s", r.P1Seconds < 30},
		{"P1 rate >= 40% of the ceiling's", r.P1RateRatio >= 0.4},
		webhook,
		{fmt.Sprintf("P2 poll < interval + 1 s (%gs)", r.P2PollIntervalSeconds+1), r.P2PollP50Seconds < r.P2PollIntervalSeconds+1},
		{"P3 CPU < 50 ms per poll", r.P3CPUSecondsPerPoll < 0.05},
		{"P3 RSS < 300 MB", r.P3RSSMB < 300},
		{"P3 API writes = 0", r.P3APIWrites == 0},
		{"P3 git fetches = 0", r.P3GitFetches == 0},
		{"P4 < 500 ms", r.P4Seconds < 0.5},
	}
}

func (r *Results) judge() {
	r.GoalsMissed = []string{}
	for _, g := range r.goals() {
		if !g.met {
			r.GoalsMissed = append(r.GoalsMissed, g.name)
		}
	}
}

// printTable writes the figures and the goals as a table.
func (r *Results) printTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "kudod benchmark: %d instances, %d objects, envtest kube-apiserver; %d cores, %s; load average %s at the start\n", r.Instances, r.Objects, r.Machine.Cores, r.Machine.CPUModel, r.LoadAverage)
	fmt.Fprintf(tw, "figure\tvalue\tdetail\n")
	fmt.Fprintf(tw, "P1 cold start\t%.1f s\t%.0f objects/s; every Instance created at %.1f s; CPU: kudod %.1f s, kube-apiserver %.1f s, machine %.0f%% busy\n", r.P1Seconds, r.P1ObjectsPerSecond, r.P1InstancesCreatedSeconds, r.P1DaemonCPUSeconds, r.P1APIServerCPUSeconds, 100*r.P1MachineBusy)
	fmt.Fprintf(tw, "P1 ceiling (bare SSA client)\t%.1f s\t%.0f objects/s; kudod at %.0f%% of it; CPU: kube-apiserver %.1f s, machine %.0f%% busy\n", r.P1CeilingSeconds, r.P1CeilingObjectsPerSecond, 100*r.P1RateRatio, r.P1CeilingAPIServerCPUSeconds, 100*r.P1CeilingMachineBusy)
	if r.P2WebhookP50Seconds != nil {
		fmt.Fprintf(tw, "P2 push → update COMPLETE, webhook (p50)\t%.2f s\t%s\n", *r.P2WebhookP50Seconds, seconds(r.P2WebhookSamplesSeconds))
	} else {
		fmt.Fprintf(tw, "P2 push → update COMPLETE, webhook (p50)\t-\t%s\n", r.P2WebhookNote)
	}
	fmt.Fprintf(tw, "P2 push → update COMPLETE, poll %gs (p50)\t%.2f s\t%s\n", r.P2PollIntervalSeconds, r.P2PollP50Seconds, seconds(r.P2PollSamplesSeconds))
	fmt.Fprintf(tw, "P3 idle CPU per poll\t%.1f ms\t%.2f s CPU over %d polls in %.0f s\n", 1000*r.P3CPUSecondsPerPoll, r.P3CPUSeconds, r.P3Polls, r.P3WindowSeconds)
	fmt.Fprintf(tw, "P3 peak RSS\t%.0f MB\t%.0f MB when idle\n", r.P3RSSMB, r.P3RSSIdleMB)
	fmt.Fprintf(tw, "P3 API writes when idle\t%d\t%s\n", r.P3APIWrites, writeCountsOf(r.P3APIWritesBy))
	fmt.Fprintf(tw, "P3 git fetches when idle\t%d\t\n", r.P3GitFetches)
	fmt.Fprintf(tw, "P4 kudod plan (p50)\t%.0f ms\t%s\n", 1000*r.P4Seconds, seconds(r.P4SamplesSeconds))
	tw.Flush()
	fmt.Fprintf(w, "P1 API writes by kudod: %s\n", writeCountsOf(r.P1APIWrites))
	fmt.Fprintf(w, "P1 API writes by the ceiling: %s\n", writeCountsOf(r.P1CeilingAPIWrites))
	fmt.Fprintf(w, "P1 kudod's requests by method: %v\n", r.P1DaemonRequests)
	for _, g := range r.goals() {
		mark := "met   "
		if !g.met {
			mark = "MISSED"
		}
		fmt.Fprintf(w, "goal %s %s\n", mark, g.name)
	}
	fmt.Fprintf(w, "took %s\n", time.Duration(r.TotalSeconds*float64(time.Second)).Round(time.Second))
}

func writeCountsOf(m map[string]int64) writeCounts {
	w := writeCounts{}
	for k, v := range m {
		w[k] = float64(v)
	}
	return w
}

func seconds(samples []float64) string {
	parts := make([]string, len(samples))
	for i, s := range samples {
		parts[i] = fmt.Sprintf("%.2f", s)
	}
	return "samples (s): " + strings.Join(parts, " ")
}

// writeJSON writes the results to path.
func (r *Results) writeJSON(path string) error { return writeReport(path, r, nil) }

// field is one more key of the JSON report, after the struct's.
type field struct {
	key   string
	value any
}

// writeReport writes head as an indented JSON object to path, with the extra keys after its
// own, in order.
func writeReport(path string, head any, extra []field) error {
	encode := func(v any, prefix string) ([]byte, error) {
		var data bytes.Buffer
		enc := json.NewEncoder(&data)
		enc.SetEscapeHTML(false) // goal names hold ">="
		enc.SetIndent(prefix, "  ")
		if err := enc.Encode(v); err != nil {
			return nil, err
		}
		return bytes.TrimSuffix(data.Bytes(), []byte("\n")), nil
	}
	data, err := encode(head, "")
	if err != nil {
		return err
	}
	if len(extra) > 0 {
		var more bytes.Buffer
		for _, f := range extra {
			v := f.value
			if x, ok := v.(float64); ok && (math.IsNaN(x) || math.IsInf(x, 0)) {
				v = nil // a ratio of a figure that was not measured
			}
			value, err := encode(v, "  ")
			if err != nil {
				return fmt.Errorf("%s: %w", f.key, err)
			}
			fmt.Fprintf(&more, ",\n  %q: %s", f.key, value)
		}
		body := bytes.TrimSuffix(data, []byte("\n}"))
		if len(body) == len(data) {
			return fmt.Errorf("the report's head is not a JSON object")
		}
		data = append(append(body, more.Bytes()...), "\n}"...)
	}
	if err := os.WriteFile(path, append(data, '\n'), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

// median of samples (the mean of the middle two for an even count).
func median(samples []float64) float64 {
	if len(samples) == 0 {
		return 0
	}
	s := slices.Clone(samples)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

// outputPath is the path in the environment variable env, else def; a relative path is taken
// from the repository root, not from the package directory `go test` runs in.
func outputPath(env, def string) (string, error) {
	p := os.Getenv(env)
	if p == "" {
		p = def
	}
	if filepath.IsAbs(p) {
		return p, nil
	}
	root, err := repoRoot()
	if err != nil {
		return "", err
	}
	return filepath.Join(root, p), nil
}

// repoRoot is the directory of kudod's go.mod, above the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
