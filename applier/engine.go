// Package applier runs a plan against a cluster: it renders every template of the plan
// before the first write, then walks phases and steps (serial unless a strategy says
// parallel), server-side applies each step's objects with fluxcd/pkg/ssa after validating
// them by dry-run, waits for them to be healthy, records what it applied in an inventory and
// prunes what no plan renders any more (docs/design.md, Running a plan).
//
// The files follow the run: engine.go walks phases, run.go keeps a run's status and persists
// it, step.go runs one step with retries and its timeout, render.go renders a plan; each task
// kind lives in its own task_<kind>.go; apply.go, delete.go and wait.go are the writes and
// waits the tasks share; prune.go, drift.go and preview.go are what the daemon asks besides
// runs.
package applier

import (
	"context"
	"time"

	"github.com/fluxcd/pkg/ssa"
	"golang.org/x/sync/errgroup"
	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
)

// Options configure an Engine.
type Options struct {
	// AllowClusterScoped lets packages create cluster-scoped objects.
	AllowClusterScoped bool
	// StepTimeout bounds each step unless the instance sets its own (default 10m;
	// docs/design.md, Running a plan).
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
	// Impersonation builds the clients of plans that run as a service account (Engine.For);
	// nil: such plans fail.
	Impersonation *Impersonation
	// RenderLimits bound each plan render (zero fields: manifests.DefaultRenderLimits).
	RenderLimits manifests.RenderLimits
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
	// instances reads and writes child Instances (KudoOperator tasks) as the daemon: they are
	// kudod's own objects, like the Instances it applies from git, whoever the plan runs as.
	instances client.Client
	// user is who the engine's requests impersonate (For); empty: the daemon itself.
	user          string
	impersonation *Impersonation
	// strictNamespaces: see Tenant.
	strictNamespaces bool
}

// NewEngine returns an engine writing through c (server-side apply, field manager kudod).
// exec runs commands in pods for Pipe tasks (nil: Pipe tasks fail).
func NewEngine(c client.Client, resources *ssa.ResourceManager, exec PodExecutor, opts Options) *Engine {
	opts.defaults()
	resources.SetConcurrency(opts.Concurrency)
	return &Engine{client: c, mapper: c.RESTMapper(), resources: resources, exec: exec, opts: opts, writes: make(chan struct{}, opts.ConcurrentWrites),
		instances: c, impersonation: opts.Impersonation}
}

// Resources returns the engine's server-side apply manager.
func (e *Engine) Resources() *ssa.ResourceManager { return e.resources }

// Execute runs a rendered plan until it completes (nil), fails (a *FatalError; the status
// says where), or ctx ends (the context's cause: superseded or aborted). A step that is
// writing when ctx ends finishes its writes; a step that is waiting stops at once.
func (e *Engine) Execute(ctx context.Context, run *Run, rp *RenderedPlan) error {
	run.start()
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
// error is returned). An empty strategy is serial, unlike KUDO's default (KUDO #1766).
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

// runPhase runs the steps of a phase, skipping a phase a resumed run already completed.
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
