package applier

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
)

// Run is one execution of a plan for an instance.
type Run struct {
	Instance *v1alpha1.Instance
	Package  *manifests.Package
	Plan     string
	// Params are the instance's explicit parameter values (spec.parameters).
	Params map[string]string
	// Children finds the packages of KudoOperator tasks.
	Children PackageFinder
	// Status is the plan's status tree; COMPLETE steps are skipped, so a restarted daemon
	// resumes where it stopped.
	Status *v1alpha1.PlanStatus
	// Inventory is the instance's inventory; objects the run applies are added, objects it
	// deletes removed.
	Inventory Inventory
	// StepTimeout overrides the engine's step timeout.
	StepTimeout time.Duration
	// Persist records progress: before each step starts (with everything done so far) and
	// when a step hits a transient error; never concurrently. How the plan ended is the
	// caller's to record.
	Persist func(ctx context.Context, status v1alpha1.PlanStatus, inventory []v1alpha1.InventoryEntry) error
	// Now is the clock (tests).
	Now func() time.Time

	mu      sync.Mutex
	persist sync.Mutex
	// saved is what was persisted last; an unchanged state is not written again.
	saved *persisted
	// The run's first write is deferred (StartRecordDelay); its clock starts when the first
	// step gets to write, not while it waits for a write slot.
	deferred      bool
	deferredCtx   context.Context
	deferredDelay time.Duration
	pending       *time.Timer
	// closed stops writes once the run returned.
	closed bool
	// stop, once set, ends the run before its next step starts (a Replace schedule waits for
	// the running step; docs/design.md, Schedules).
	stop atomic.Pointer[error]
}

// StopAfterStep ends the run with err once the step it is in has finished.
func (run *Run) StopAfterStep(err error) { run.stop.Store(&err) }

func (run *Run) stopped() error {
	if p := run.stop.Load(); p != nil {
		return *p
	}
	return nil
}

// NewPlanStatus returns the status tree of a plan about to start: the plan IN_PROGRESS, its
// phases and steps PENDING.
func NewPlanStatus(plan *manifests.Plan, uid string, trigger v1alpha1.Trigger, revision string, reasons []string, now time.Time) v1alpha1.PlanStatus {
	t := metav1.NewTime(now)
	ps := v1alpha1.PlanStatus{
		Name: plan.Name, Strategy: strategyOf(plan.Strategy), Status: v1alpha1.StatusInProgress,
		UID: uid, Trigger: trigger, Revision: revision, Reasons: reasons, LastUpdated: &t,
	}
	for _, ph := range plan.Phases {
		phs := v1alpha1.PhaseStatus{Name: ph.Name, Strategy: strategyOf(ph.Strategy), Status: v1alpha1.StatusPending}
		for _, st := range ph.Steps {
			phs.Steps = append(phs.Steps, v1alpha1.StepStatus{Name: st.Name, Status: v1alpha1.StatusPending})
		}
		ps.Phases = append(ps.Phases, phs)
	}
	return ps
}

func strategyOf(s string) string {
	if s == "" {
		return manifests.StrategySerial
	}
	return s
}

// --- status bookkeeping (guarded by run.mu) ---

// start marks the plan IN_PROGRESS again (a resumed run's tree may say otherwise).
func (run *Run) start() {
	if run.Now == nil {
		run.Now = time.Now
	}
	run.mu.Lock()
	defer run.mu.Unlock()
	run.Status.Status = v1alpha1.StatusInProgress
	run.Status.Message = ""
}

func (run *Run) now() *metav1.Time { t := metav1.NewTime(run.Now()); return &t }

func (run *Run) setPlan(s v1alpha1.ExecutionStatus, msg string) {
	run.mu.Lock()
	defer run.mu.Unlock()
	run.Status.Status, run.Status.Message, run.Status.LastUpdated = s, msg, run.now()
}

func (run *Run) phaseStatus(pi int) v1alpha1.ExecutionStatus {
	run.mu.Lock()
	defer run.mu.Unlock()
	return run.Status.Phases[pi].Status
}

func (run *Run) stepStatus(pi, si int) v1alpha1.ExecutionStatus {
	run.mu.Lock()
	defer run.mu.Unlock()
	return run.Status.Phases[pi].Steps[si].Status
}

func (run *Run) setPhase(pi int, s v1alpha1.ExecutionStatus, msg string) {
	run.mu.Lock()
	defer run.mu.Unlock()
	run.Status.Phases[pi].Status, run.Status.Phases[pi].Message = s, msg
	run.Status.LastUpdated = run.now()
}

// setStep records a step's status; a step starting also starts its phase.
func (run *Run) setStep(pi, si int, s v1alpha1.ExecutionStatus, msg string) {
	run.mu.Lock()
	defer run.mu.Unlock()
	st := &run.Status.Phases[pi].Steps[si]
	st.Status, st.Message, st.LastUpdated = s, msg, run.now()
	if s == v1alpha1.StatusInProgress && st.StartTime == nil {
		st.StartTime = st.LastUpdated
	}
	if s == v1alpha1.StatusInProgress && run.Status.Phases[pi].Status == v1alpha1.StatusPending {
		run.Status.Phases[pi].Status = v1alpha1.StatusInProgress
	}
	run.Status.LastUpdated = run.now()
}

// inventory returns a copy of the run's inventory.
func (run *Run) inventory() Inventory {
	run.mu.Lock()
	defer run.mu.Unlock()
	out := make(Inventory, len(run.Inventory))
	for k, v := range run.Inventory {
		out[k] = v
	}
	return out
}

func (run *Run) addInventory(objs ...*unstructured.Unstructured) {
	run.mu.Lock()
	defer run.mu.Unlock()
	run.Inventory.Add(objs...)
}

func (run *Run) removeInventory(objs ...*unstructured.Unstructured) {
	run.mu.Lock()
	defer run.mu.Unlock()
	run.Inventory.Remove(objs...)
}

// --- persistence (guarded by run.persist) ---

// saveAtStepStart persists progress before a step: at once, except for the run's first write,
// which waits for delay (negative: no wait) once the step starts writing, unless a later
// write comes first.
func (run *Run) saveAtStepStart(ctx context.Context, delay time.Duration) error {
	run.persist.Lock()
	first := run.saved == nil && !run.deferred
	if first && delay > 0 && run.Persist != nil {
		run.deferred, run.deferredCtx, run.deferredDelay = true, ctx, delay
		run.persist.Unlock()
		return nil
	}
	run.persist.Unlock()
	return run.save(ctx)
}

// armDeferredSave starts the clock of a deferred first write.
func (run *Run) armDeferredSave() {
	run.persist.Lock()
	defer run.persist.Unlock()
	if !run.deferred || run.pending != nil || run.closed || run.saved != nil {
		return
	}
	ctx := run.deferredCtx
	run.pending = time.AfterFunc(run.deferredDelay, func() {
		if err := run.save(ctx); err != nil {
			logr.FromContextOrDiscard(ctx).Error(err, "recording the start of the plan")
		}
	})
}

// close ends the run's writes: a deferred first write that has not happened is dropped, one in
// flight is waited for. The caller records the end.
func (run *Run) close() {
	run.persist.Lock()
	defer run.persist.Unlock()
	if run.pending != nil {
		run.pending.Stop()
	}
	run.closed = true
}

type persisted struct {
	status    v1alpha1.PlanStatus
	inventory []v1alpha1.InventoryEntry
}

// save persists a snapshot of the status and inventory unless it is what was persisted
// last; saves are serialised.
func (run *Run) save(ctx context.Context) error {
	if run.Persist == nil {
		return nil
	}
	run.persist.Lock()
	defer run.persist.Unlock()
	if run.closed {
		return nil
	}
	if run.pending != nil {
		run.pending.Stop()
	}
	run.mu.Lock()
	snap := &persisted{status: *run.Status.DeepCopy(), inventory: run.Inventory.Entries()}
	run.mu.Unlock()
	if run.saved != nil && equality.Semantic.DeepEqual(run.saved.status, snap.status) && equality.Semantic.DeepEqual(run.saved.inventory, snap.inventory) {
		return nil
	}
	if err := run.Persist(ctx, snap.status, snap.inventory); err != nil {
		return fmt.Errorf("persist progress of plan %s: %w", run.Plan, err)
	}
	run.saved = snap
	return nil
}

// setStepObjects records what a step works on, for `kudod status` and `kudod ui`.
func (run *Run) setStepObjects(pi, si int, objs []v1alpha1.ObjectRef) {
	run.mu.Lock()
	defer run.mu.Unlock()
	run.Status.Phases[pi].Steps[si].Objects = objs
}
