package bench

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestScaleReport checks the scale runs' JSON keys (docs/scaling.md) and tables on made-up
// figures: no cluster needed.
func TestScaleReport(t *testing.T) {
	s := &scaleResults{
		cfg: scaleConfig{sizes: []int{100, 300}, idle: time.Minute, noisy: true, noisyInstances: 100, noise: noise{objects: 4000, namespaces: 100, pods: 200}, shard: 200},
		sizes: []sizeFigures{
			{instances: 100, p1Seconds: 3, p1CeilingSeconds: 1, p1RateRatio: 0.33, p3RSSMB: 70, p3CPUSecondsPerPoll: 0.004, p4Seconds: 0.06},
			{instances: 300, p1Seconds: 10, p1CeilingSeconds: 4, p1RateRatio: 0.4, p3RSSMB: 90, p3CPUSecondsPerPoll: 0.004, p4Seconds: 0.06},
		},
		quiet: &noisyRun{p3RSSMB: 70}, noisy: &noisyRun{p3RSSMB: 80},
		noise: &noiseStats{objects: 4000, events: 1000, seconds: 5},
		shard: &shardFigures{instances: 200, rssMB: [2]float64{70, 71}, singleRSSMB: 88, overlap: 0},
	}
	var table strings.Builder
	s.printTable(&table)
	t.Log("\n" + table.String())
	for _, want := range []string{"growth 100→300", "n^1.10", "+100.0 /1000", "noisy/quiet", "shard a", "goal MISSED 100: P1 rate >= 35%", "goal MISSED noisy RSS within 10% of quiet"} {
		if !strings.Contains(table.String(), want) {
			t.Errorf("the tables lack %q:\n%s", want, table.String())
		}
	}
	path := filepath.Join(t.TempDir(), "scale.json")
	if err := writeReport(path, scaleHead{Machine: Machine{Cores: 2, CPUModel: "test"}}, s.fields()); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var report map[string]any
	if err := json.Unmarshal(data, &report); err != nil {
		t.Fatalf("%v:\n%s", err, data)
	}
	for _, k := range []string{
		"machine", "p1_seconds_100", "p1_ceiling_seconds_300", "p1_rate_ratio_300", "p1_objects_per_second_100",
		"p1_requests_per_instance_300", "p3_rss_mb_300", "p3_cpu_seconds_per_poll_100", "p4_seconds_300", "restart_seconds_100",
		"p3_rss_mb_quiet", "p3_rss_mb_noisy", "start_seconds_quiet", "restart_seconds_noisy", "noise_create_seconds",
		"shard_rss_mb_a", "shard_rss_mb_b", "shard_single_rss_mb", "shard_overlap_instances", "scale_goals_missed",
	} {
		if _, ok := report[k]; !ok {
			t.Errorf("the report has no %q", k)
		}
	}
	if got := report["p3_rss_noisy_ratio"]; got != 80.0/70.0 {
		t.Errorf("p3_rss_noisy_ratio = %v", got)
	}
}
