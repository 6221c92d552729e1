package applier

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
)

// errStepTimeout is the cause of a step context that ran out of time.
var errStepTimeout = errors.New("step timeout")

// runStep runs one step until it is done, fails, or times out: a transient error is retried
// with a growing pause, a fatal one or the step timeout fails the plan (KUDO had no step
// timeout and retried transient errors forever, KUDO #1764).
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
	run.setStepObjects(pi, si, rs.objectRefs(run.Instance.Namespace))
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

// once runs the step's tasks: first every write (the objects every task of the step applies in
// one dry-run-validated batch, then the objects they delete, then each task's own writes in
// task order: pipes, child instances), then waits until every object is healthy, every
// deletion done and every task done. Writes run on a context that supersession does not
// cancel, so a step never stops half-written; waits stop at once.
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
	apply, del := x.step.batch()
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
		objs, err := t.write(ctx, writeCtx, x)
		if err != nil {
			return err
		}
		x.run.addInventory(objs...)
	}
	return nil
}

// wait waits for the step's objects and tasks; it ends at once when ctx ends.
func (x *stepExecution) wait(ctx context.Context) error {
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	apply, del := x.step.batch()
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
		if err := t.wait(ctx, x); err != nil {
			return err
		}
	}
	return nil
}

// objectRefs lists the objects a step applies, deletes or makes (Pipe artifacts, child
// instances), in task order, at most v1alpha1.MaxStepObjects.
func (rs *renderedStep) objectRefs(namespace string) []v1alpha1.ObjectRef {
	var out []v1alpha1.ObjectRef
	seen := map[string]bool{}
	add := func(objs []*unstructured.Unstructured) {
		for _, o := range objs {
			id := inventoryID(o)
			if seen[id] || len(out) >= v1alpha1.MaxStepObjects {
				continue
			}
			seen[id] = true
			out = append(out, v1alpha1.ObjectRef{APIVersion: o.GetAPIVersion(), Kind: o.GetKind(), Namespace: o.GetNamespace(), Name: o.GetName()})
		}
	}
	for _, t := range rs.tasks {
		apply, remove := t.batch()
		add(apply)
		add(remove)
		add(t.inventory(namespace))
	}
	return out
}
