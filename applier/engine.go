package applier

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fluxcd/pkg/ssa"
	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
)

// Options configure an Engine.
type Options struct {
	// AllowClusterScoped lets packages create cluster-scoped objects.
	AllowClusterScoped bool
	// StepTimeout bounds each step unless the instance sets its own (SPEC §3; default 10m).
	StepTimeout time.Duration
	// Concurrency is how many objects of a step are dry-run at once.
	Concurrency int
	// ConcurrentWrites is how many steps may be writing at the same time.
	ConcurrentWrites int
	// HealthPollMax is the longest pause between health checks of a waiting step.
	HealthPollMax time.Duration
	// RetryMax is the longest pause between retries of a step after a transient error.
	RetryMax time.Duration
	// StartRecordDelay delays a run's first progress write: a plan that ends sooner is
	// recorded once, at its end, which halves the status writes of short plans (default 2s).
	StartRecordDelay time.Duration
}

func (o *Options) defaults() {
	if o.StepTimeout <= 0 {
		o.StepTimeout = 10 * time.Minute
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 4
	}
	if o.ConcurrentWrites <= 0 {
		o.ConcurrentWrites = 16
	}
	if o.HealthPollMax <= 0 {
		o.HealthPollMax = 2 * time.Second
	}
	if o.RetryMax <= 0 {
		o.RetryMax = 30 * time.Second
	}
	if o.StartRecordDelay == 0 {
		o.StartRecordDelay = 2 * time.Second
	}
}

// Engine runs plans against one cluster. It is safe for concurrent use by many runs.
type Engine struct {
	client    client.Client
	mapper    meta.RESTMapper
	resources *ssa.ResourceManager
	exec      PodExecutor
	opts      Options
	// writes bounds how many steps write at once; waiting steps hold no slot, so a parent
	// waiting for its child never starves the child.
	writes chan struct{}
}

// NewEngine returns an engine writing through c (server-side apply, field manager kudod).
// exec runs commands in pods for Pipe tasks (nil: Pipe tasks fail).
func NewEngine(c client.Client, resources *ssa.ResourceManager, exec PodExecutor, opts Options) *Engine {
	opts.defaults()
	resources.SetConcurrency(opts.Concurrency)
	return &Engine{client: c, mapper: c.RESTMapper(), resources: resources, exec: exec, opts: opts, writes: make(chan struct{}, opts.ConcurrentWrites)}
}

// Resources returns the engine's server-side apply manager.
func (e *Engine) Resources() *ssa.ResourceManager { return e.resources }

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
	// the running step, SPEC §5).
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

// FatalError ends a plan with FATAL_ERROR: retrying cannot help.
type FatalError struct{ Err error }

func (e *FatalError) Error() string { return e.Err.Error() }
func (e *FatalError) Unwrap() error { return e.Err }

func fatal(err error) error {
	var fe *FatalError
	if errors.As(err, &fe) {
		return err
	}
	return &FatalError{Err: err}
}

// IsFatal reports whether err ended a plan with FATAL_ERROR.
func IsFatal(err error) bool {
	var fe *FatalError
	return errors.As(err, &fe)
}

// Render renders every template of the run's plan; an error means nothing must be written.
func (e *Engine) Render(ctx context.Context, run *Run) (*RenderedPlan, error) {
	rp, err := renderPlan(ctx, renderInput{
		instance: run.Instance,
		pkg:      run.Package,
		plan:     run.Plan,
		params:   run.Package.EffectiveParams(run.Params),
		children: run.Children,
		prepare:  prepareOptions{allowClusterScoped: e.opts.AllowClusterScoped},
	}, func(objs []*unstructured.Unstructured) *scope { return newScope(e.mapper, objs) })
	if err != nil {
		return nil, fatal(err)
	}
	return rp, nil
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

// Execute runs a rendered plan until it completes (nil), fails (a *FatalError; the status
// says where), or ctx ends (the context's cause: superseded or aborted). A step that is
// writing when ctx ends finishes its writes; a step that is waiting stops at once.
func (e *Engine) Execute(ctx context.Context, run *Run, rp *RenderedPlan) error {
	if run.Now == nil {
		run.Now = time.Now
	}
	run.mu.Lock()
	run.Status.Status = v1alpha1.StatusInProgress
	run.Status.Message = ""
	run.mu.Unlock()
	err := e.walk(ctx, run, rp)
	run.close()
	switch {
	case err == nil:
		run.setPlan(v1alpha1.StatusComplete, "")
	case IsFatal(err):
		run.setPlan(v1alpha1.StatusFatalError, err.Error())
	}
	// The caller records how the plan ended, with the final tree, in one write.
	return err
}

// walk runs the phases: in order when the plan is serial (the default), all at once when parallel.
func (e *Engine) walk(ctx context.Context, run *Run, rp *RenderedPlan) error {
	plan := rp.Plan
	return forEach(ctx, plan.Strategy, len(plan.Phases), func(ctx context.Context, i int) error {
		return e.runPhase(ctx, run, rp, &plan.Phases[i], i)
	})
}

// forEach runs fn for 0..n-1: one after the other for a serial strategy (stopping at the
// first error), concurrently for a parallel one (every branch runs to its end; the first
// error is returned).
func forEach(ctx context.Context, strategy string, n int, fn func(context.Context, int) error) error {
	if strategy != manifests.StrategyParallel {
		for i := 0; i < n; i++ {
			if err := fn(ctx, i); err != nil {
				return err
			}
		}
		return nil
	}
	var g errgroup.Group
	for i := 0; i < n; i++ {
		g.Go(func() error { return fn(ctx, i) })
	}
	return g.Wait()
}

func (e *Engine) runPhase(ctx context.Context, run *Run, rp *RenderedPlan, ph *manifests.Phase, pi int) error {
	if run.phaseStatus(pi) == v1alpha1.StatusComplete {
		return nil
	}
	run.setPhase(pi, v1alpha1.StatusInProgress, "")
	err := forEach(ctx, ph.Strategy, len(ph.Steps), func(ctx context.Context, si int) error {
		return e.runStep(ctx, run, rp, ph, pi, si)
	})
	switch {
	case err == nil:
		run.setPhase(pi, v1alpha1.StatusComplete, "")
	case IsFatal(err):
		run.setPhase(pi, v1alpha1.StatusFatalError, err.Error())
	}
	return err
}

// errStepTimeout is the cause of a step context that ran out of time.
var errStepTimeout = errors.New("step timeout")

func (e *Engine) runStep(ctx context.Context, run *Run, rp *RenderedPlan, ph *manifests.Phase, pi, si int) error {
	st := &ph.Steps[si]
	if run.stepStatus(pi, si) == v1alpha1.StatusComplete {
		return nil
	}
	if err := run.stopped(); err != nil {
		return err
	}
	rs := rp.step(ph.Name, st.Name)
	timeout := run.StepTimeout
	if timeout <= 0 {
		timeout = e.opts.StepTimeout
	}
	log := logr.FromContextOrDiscard(ctx).WithValues("plan", run.Plan, "phase", ph.Name, "step", st.Name)
	run.setStep(pi, si, v1alpha1.StatusInProgress, "")
	// Progress is persisted before each step does anything: this write also carries the
	// completion of the step before, so a serial plan costs one write per step. A step that
	// completed but was not persisted yet runs again after a restart, which is harmless:
	// applying is idempotent and its objects are already healthy.
	if err := run.saveAtStepStart(context.WithoutCancel(ctx), e.opts.StartRecordDelay); err != nil {
		return err
	}
	stepCtx, cancel := context.WithTimeoutCause(ctx, timeout, errStepTimeout)
	defer cancel()
	x := &stepExecution{engine: e, run: run, step: rs, log: log}
	delay := time.Second
	for {
		err := x.once(stepCtx)
		if err == nil {
			run.setStep(pi, si, v1alpha1.StatusComplete, "")
			return nil
		}
		if ctx.Err() != nil {
			// Superseded or aborted: not this step's failure.
			return context.Cause(ctx)
		}
		if errors.Is(context.Cause(stepCtx), errStepTimeout) {
			err = fatal(fmt.Errorf("step %s timed out after %s: %w", st.Name, timeout, err))
		}
		if IsFatal(err) {
			run.setStep(pi, si, v1alpha1.StatusFatalError, err.Error())
			return err
		}
		log.Info("transient error, will retry", "error", err.Error(), "after", delay)
		run.setStep(pi, si, v1alpha1.StatusError, fmt.Sprintf("A transient error when executing step %s/%s/%s. Will retry. %v", run.Plan, ph.Name, st.Name, err))
		if serr := run.save(context.WithoutCancel(ctx)); serr != nil {
			log.Error(serr, "persisting step status")
		}
		select {
		case <-stepCtx.Done():
		case <-time.After(delay):
		}
		delay = min(delay*2, e.opts.RetryMax)
	}
}

// stepExecution runs one pass of a step: writes, then waits.
type stepExecution struct {
	engine *Engine
	run    *Run
	step   *renderedStep
	log    logr.Logger
}

// once runs the step's tasks: first every write (all Apply objects of the step in one
// dry-run-validated batch, then deletions, pipes and child instances, in task order), then
// waits until every object is healthy and every deletion done. Writes run on a context that
// supersession does not cancel, so a step never stops half-written; waits stop at once.
func (x *stepExecution) once(ctx context.Context) error {
	if err := x.writes(ctx); err != nil {
		return err
	}
	return x.wait(ctx)
}

// writes does the step's writes, holding one of the engine's write slots.
func (x *stepExecution) writes(ctx context.Context) error {
	select {
	case x.engine.writes <- struct{}{}:
	case <-ctx.Done():
		return context.Cause(ctx)
	}
	defer func() { <-x.engine.writes }()
	x.run.armDeferredSave()
	writeCtx := context.WithoutCancel(ctx)
	if deadline, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		writeCtx, cancel = context.WithDeadline(writeCtx, deadline)
		defer cancel()
	}
	var apply, del []*unstructured.Unstructured
	for _, t := range x.step.tasks {
		apply = append(apply, t.apply...)
		del = append(del, t.delete...)
	}
	if len(apply) > 0 {
		if err := x.engine.apply(writeCtx, apply, x.run.inventory()); err != nil {
			return err
		}
		x.run.addInventory(apply...)
	}
	if len(del) > 0 {
		if err := x.engine.delete(writeCtx, del); err != nil {
			return err
		}
	}
	for _, t := range x.step.tasks {
		switch {
		case t.pipe != nil:
			objs, err := x.engine.runPipe(ctx, writeCtx, x.run, t.task, t.pipe)
			if err != nil {
				return err
			}
			x.run.addInventory(objs...)
		case t.child != nil:
			child, err := x.engine.ensureChild(writeCtx, x.run, t.child)
			if err != nil {
				return err
			}
			x.run.addInventory(child)
		}
	}
	return nil
}

// wait waits for the step's objects; it ends at once when ctx ends.
func (x *stepExecution) wait(ctx context.Context) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	var apply, del []*unstructured.Unstructured
	for _, t := range x.step.tasks {
		apply = append(apply, t.apply...)
		del = append(del, t.delete...)
	}
	if len(del) > 0 {
		if err := x.engine.waitDeleted(ctx, del); err != nil {
			return err
		}
		x.run.removeInventory(del...)
	}
	if len(apply) > 0 {
		if err := x.engine.waitHealthy(ctx, apply); err != nil {
			return err
		}
	}
	for _, t := range x.step.tasks {
		switch {
		case t.child != nil:
			if err := x.engine.waitChild(ctx, x.run, t.child); err != nil {
				return err
			}
		case t.task.Kind == manifests.TaskDummy:
			if err := runDummy(ctx, t.task); err != nil {
				return err
			}
		}
	}
	return nil
}

// runDummy is KUDO's Dummy task: an error when wantErr (fatal when fatal), done when done,
// and otherwise a pause that only a newer plan, an abort or the step timeout ends.
func runDummy(ctx context.Context, t *manifests.Task) error {
	switch {
	case t.Spec.WantErr && t.Spec.Fatal:
		return fatal(fmt.Errorf("dummy task %s failed (wantErr, fatal)", t.Name))
	case t.Spec.WantErr:
		return fmt.Errorf("dummy task %s failed (wantErr)", t.Name)
	case t.Spec.Done:
		return nil
	}
	<-ctx.Done()
	if errors.Is(context.Cause(ctx), errStepTimeout) {
		return fmt.Errorf("dummy task %s never completes (it has neither done nor wantErr set)", t.Name)
	}
	return context.Cause(ctx)
}

// --- status bookkeeping (guarded by run.mu) ---

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

func (run *Run) setStep(pi, si int, s v1alpha1.ExecutionStatus, msg string) {
	run.mu.Lock()
	defer run.mu.Unlock()
	st := &run.Status.Phases[pi].Steps[si]
	st.Status, st.Message, st.LastUpdated = s, msg, run.now()
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

// describeObjects lists objects as Kind/namespace/name.
func describeObjects(objs []*unstructured.Unstructured) string {
	names := make([]string, 0, len(objs))
	for _, o := range objs {
		names = append(names, objectRef(o))
	}
	return strings.Join(names, ", ")
}
