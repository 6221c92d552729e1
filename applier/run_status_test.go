package applier

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
)

func twoPhasePlan() *manifests.Plan {
	return &manifests.Plan{Name: "deploy", Phases: []manifests.Phase{
		{Name: "one", Strategy: manifests.StrategyParallel, Steps: []manifests.Step{{Name: "a"}, {Name: "b"}}},
		{Name: "two", Steps: []manifests.Step{{Name: "c"}}},
	}}
}

// recorder is a Run's Persist that remembers what it was given.
type recorder struct {
	mu    sync.Mutex
	saved []v1alpha1.PlanStatus
	err   error
}

func (r *recorder) persist(_ context.Context, s v1alpha1.PlanStatus, _ []v1alpha1.InventoryEntry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		return r.err
	}
	r.saved = append(r.saved, s)
	return nil
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.saved)
}

func newTestRun(rec *recorder) *Run {
	st := NewPlanStatus(twoPhasePlan(), "uid", v1alpha1.TriggerGit, "abc", []string{"why"}, time.Unix(0, 0))
	run := &Run{Plan: "deploy", Status: &st, Inventory: Inventory{}, Now: func() time.Time { return time.Unix(100, 0) }}
	if rec != nil {
		run.Persist = rec.persist
	}
	return run
}

func TestNewPlanStatus(t *testing.T) {
	st := NewPlanStatus(twoPhasePlan(), "uid", v1alpha1.TriggerGit, "abc", []string{"why"}, time.Unix(0, 0))
	if st.Status != v1alpha1.StatusInProgress || st.Strategy != manifests.StrategySerial || st.UID != "uid" || st.Revision != "abc" {
		t.Errorf("plan %+v", st)
	}
	if len(st.Phases) != 2 || st.Phases[0].Strategy != manifests.StrategyParallel || st.Phases[1].Strategy != manifests.StrategySerial {
		t.Fatalf("phases %+v", st.Phases)
	}
	for _, ph := range st.Phases {
		if ph.Status != v1alpha1.StatusPending {
			t.Errorf("phase %s %s", ph.Name, ph.Status)
		}
		for _, s := range ph.Steps {
			if s.Status != v1alpha1.StatusPending {
				t.Errorf("step %s %s", s.Name, s.Status)
			}
		}
	}
}

func TestRunStatusBookkeeping(t *testing.T) {
	run := newTestRun(nil)
	run.Status.Status, run.Status.Message = v1alpha1.StatusFatalError, "from before"
	run.start()
	if run.Status.Status != v1alpha1.StatusInProgress || run.Status.Message != "" {
		t.Fatalf("start left %s %q", run.Status.Status, run.Status.Message)
	}
	run.setStep(0, 1, v1alpha1.StatusInProgress, "")
	if got := run.phaseStatus(0); got != v1alpha1.StatusInProgress {
		t.Errorf("a step starting leaves its phase %s", got)
	}
	run.setStep(0, 1, v1alpha1.StatusError, "will retry")
	if s := run.Status.Phases[0].Steps[1]; s.Status != v1alpha1.StatusError || s.Message != "will retry" || s.LastUpdated == nil || s.LastUpdated.Unix() != 100 {
		t.Errorf("step %+v", s)
	}
	run.setPhase(0, v1alpha1.StatusComplete, "")
	run.setStep(1, 0, v1alpha1.StatusComplete, "")
	if run.stepStatus(1, 0) != v1alpha1.StatusComplete || run.phaseStatus(0) != v1alpha1.StatusComplete {
		t.Errorf("tree %+v", run.Status.Phases)
	}
	run.setPlan(v1alpha1.StatusFatalError, "boom")
	if run.Status.Status != v1alpha1.StatusFatalError || run.Status.Message != "boom" || run.Status.LastUpdated.Unix() != 100 {
		t.Errorf("plan %s %q", run.Status.Status, run.Status.Message)
	}

	cm := &unstructured.Unstructured{}
	cm.SetAPIVersion("v1")
	cm.SetKind("ConfigMap")
	cm.SetNamespace("ns")
	cm.SetName("a")
	run.addInventory(cm)
	copied := run.inventory()
	run.removeInventory(cm)
	if len(copied) != 1 || len(run.Inventory) != 0 {
		t.Errorf("inventory copy %v, inventory %v", copied, run.Inventory)
	}
}

func TestRunSavesOnlyChanges(t *testing.T) {
	rec := &recorder{}
	run := newTestRun(rec)
	ctx := context.Background()
	if err := run.saveAtStepStart(ctx, -1); err != nil {
		t.Fatal(err)
	}
	if err := run.save(ctx); err != nil {
		t.Fatal(err)
	}
	if rec.count() != 1 {
		t.Fatalf("an unchanged state was written again: %d writes", rec.count())
	}
	run.setStep(0, 0, v1alpha1.StatusInProgress, "")
	if err := run.save(ctx); err != nil {
		t.Fatal(err)
	}
	if rec.count() != 2 {
		t.Fatalf("a change was not written: %d writes", rec.count())
	}
	run.close()
	run.setStep(0, 0, v1alpha1.StatusComplete, "")
	if err := run.save(ctx); err != nil || rec.count() != 2 {
		t.Fatalf("a closed run wrote (%d writes, %v): its end is the caller's", rec.count(), err)
	}
	rec.err = errors.New("conflict")
	run2 := newTestRun(rec)
	if err := run2.save(ctx); err == nil || !errors.Is(err, rec.err) {
		t.Fatalf("a failed write is not reported: %v", err)
	}
}

func TestRunDefersItsFirstWrite(t *testing.T) {
	ctx := context.Background()
	t.Run("a plan that ends first is never recorded as started", func(t *testing.T) {
		rec := &recorder{}
		run := newTestRun(rec)
		if err := run.saveAtStepStart(ctx, time.Hour); err != nil {
			t.Fatal(err)
		}
		run.armDeferredSave()
		run.close()
		if rec.count() != 0 {
			t.Fatalf("%d writes", rec.count())
		}
	})
	t.Run("the deferred write happens once the delay passed", func(t *testing.T) {
		rec := &recorder{}
		run := newTestRun(rec)
		if err := run.saveAtStepStart(ctx, 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		if rec.count() != 0 {
			t.Fatal("the first write was not deferred")
		}
		run.armDeferredSave()
		deadline := time.Now().Add(5 * time.Second)
		for rec.count() == 0 {
			if time.Now().After(deadline) {
				t.Fatal("the deferred write never happened")
			}
			time.Sleep(5 * time.Millisecond)
		}
		run.close()
	})
	t.Run("a later step writes at once", func(t *testing.T) {
		rec := &recorder{}
		run := newTestRun(rec)
		if err := run.saveAtStepStart(ctx, time.Hour); err != nil {
			t.Fatal(err)
		}
		run.setStep(0, 0, v1alpha1.StatusComplete, "")
		if err := run.saveAtStepStart(ctx, time.Hour); err != nil {
			t.Fatal(err)
		}
		if rec.count() != 1 {
			t.Fatalf("%d writes, want the second step's", rec.count())
		}
		run.close()
	})
}

func TestStopAfterStep(t *testing.T) {
	run := newTestRun(nil)
	if run.stopped() != nil {
		t.Fatal("a new run is stopped")
	}
	want := errors.New("replaced")
	run.StopAfterStep(want)
	if !errors.Is(run.stopped(), want) {
		t.Fatalf("stopped() = %v", run.stopped())
	}
}
