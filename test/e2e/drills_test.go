package e2e

import (
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"
)

// The failure drills (drill_*_test.go) break what kudod depends on — the daemon itself, the
// API server, the git server, the forge — in the middle of its work and check that nothing is
// lost, skipped or wrongly deleted. They use separate namespaces, repositories and daemons,
// and run in parallel with each other; their random choices come from one seed.

// drillSeedEnv names the variable that replays a drill's random choices.
const drillSeedEnv = "KUDOD_DRILL_SEED"

// drillRand returns the random source of a drill, seeded from $KUDOD_DRILL_SEED or else the
// time, and logs the seed: a failed drill runs again the same way with that seed.
func drillRand(t *testing.T) *rand.Rand {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if v := os.Getenv(drillSeedEnv); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("%s=%q: %v", drillSeedEnv, v, err)
		}
		seed = s
	}
	t.Logf("drill seed %d (run it again with %s=%d)", seed, drillSeedEnv, seed)
	return rand.New(rand.NewPCG(seed, seed^0x5eed))
}

// drillTime logs how long a drill took when it ends.
func drillTime(t *testing.T) {
	t.Helper()
	start := time.Now()
	t.Cleanup(func() { t.Logf("drill took %s", time.Since(start).Round(time.Second)) })
}

// A seed gives the same kill schedule every time: a failed drill can be run again as it was.
func TestKillScheduleIsReproducible(t *testing.T) {
	t.Setenv(drillSeedEnv, "42")
	a, b := newKillSchedule(drillRand(t), 20, len(drillSeries)), newKillSchedule(drillRand(t), 20, len(drillSeries))
	if a.String() != b.String() {
		t.Fatalf("seed 42 gave two schedules:\n%s\n%s", a, b)
	}
	commits := 0
	for i, j := range a.commit {
		if j >= 0 {
			commits++
			if i == 0 || i > 17 || a.commitAfter[i] >= a.before[i] {
				t.Errorf("commit %d at kill %d, %s into it (kill after %s)", j, i, a.commitAfter[i], a.before[i])
			}
		}
	}
	if commits != len(drillSeries)-1 {
		t.Errorf("%d commits scheduled, want %d", commits, len(drillSeries)-1)
	}
}
