package poll

import (
	"testing"
	"time"

	"github.com/go-logr/logr"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/internal/desired"
)

func TestJitter(t *testing.T) {
	tests := []struct {
		r    float64
		want time.Duration
	}{
		{0, 57 * time.Second},
		{0.25, 58*time.Second + 500*time.Millisecond},
		{0.5, time.Minute},
		{0.75, 61*time.Second + 500*time.Millisecond},
		{0.999999, 63 * time.Second},
	}
	for _, tt := range tests {
		got := jitter(time.Minute, tt.r)
		if d := got - tt.want; d < -time.Millisecond || d > time.Millisecond {
			t.Errorf("jitter(1m, %v) = %v, want %v", tt.r, got, tt.want)
		}
	}
	// Every value stays within ±5%.
	for r := 0.0; r < 1; r += 0.01 {
		if got := jitter(10*time.Second, r); got < 9500*time.Millisecond || got > 10500*time.Millisecond {
			t.Fatalf("jitter(10s, %v) = %v, outside ±5%%", r, got)
		}
	}
}

// TestSameRecord: only a change other than the poll times rewrites the source status.
func TestSameRecord(t *testing.T) {
	base := v1alpha1.SourceStatus{Repository: "platform", Revision: "abc", LastPoll: time.Unix(100, 0), NextPoll: time.Unix(160, 0)}
	later := base
	later.LastPoll, later.NextPoll = time.Unix(160, 0), time.Unix(220, 0)
	if !sameRecord(base, later) {
		t.Error("new poll times alone count as a change")
	}
	for _, edit := range []func(*v1alpha1.SourceStatus){
		func(s *v1alpha1.SourceStatus) { s.Revision = "def" },
		func(s *v1alpha1.SourceStatus) { s.LastError = "fetch: timeout" },
		func(s *v1alpha1.SourceStatus) { s.LastHandledReconcile = "2026-01-01T00:00:00Z" },
	} {
		changed := base
		edit(&changed)
		if sameRecord(base, changed) {
			t.Errorf("%+v counts as unchanged", changed)
		}
	}
}

// TestWakeFor: a `kudod reconcile` request wakes the poller once.
func TestWakeFor(t *testing.T) {
	p := New(Repository{Repository: desired.Repository{Name: "platform"}}, Options{Log: logr.Discard()})
	woken := func() bool {
		select {
		case <-p.wake:
			return true
		default:
			return false
		}
	}
	p.WakeFor("")
	if woken() {
		t.Fatal("an empty request woke the poller")
	}
	p.WakeFor("2026-01-01T00:00:00Z")
	if !woken() {
		t.Fatal("a new request did not wake the poller")
	}
	p.WakeFor("2026-01-01T00:00:00Z")
	if woken() {
		t.Fatal("a handled request woke the poller again")
	}
	// Wakes do not pile up: one pending wake is enough.
	p.Wake()
	p.Wake()
	if !woken() || woken() {
		t.Fatal("two wakes are not one pending poll")
	}
}

func TestFirstFailure(t *testing.T) {
	p := &Poller{}
	steps := []struct {
		commit, finding string
		want            bool
	}{
		{"a", "x.yaml: cannot decrypt", true},
		{"a", "x.yaml: cannot decrypt", false}, // the next poll of the same commit
		{"a", "y.yaml: cannot decrypt", true},  // a new finding
		{"b", "y.yaml: cannot decrypt", true},  // a new commit
		{"a", "y.yaml: cannot decrypt", true},  // back to an older commit
	}
	for i, s := range steps {
		if got := p.firstFailure(s.commit, s.finding); got != s.want {
			t.Errorf("step %d (%s, %s): firstFailure = %v, want %v", i, s.commit, s.finding, got, s.want)
		}
	}
}
