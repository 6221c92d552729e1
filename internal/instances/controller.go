// Package instances is the Instance controller: it runs the plans of Instances (docs/design.md,
// Running a plan) — the plan git asks for, a manual trigger, a scheduled run (Schedules), or
// the cleanup of a removed instance — records them in the Instance's status and on the
// commit, prunes what no plan renders any more (Pruning), and between plans corrects drift
// (Drift).
package instances

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/events"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/internal/forge"
	"github.com/kudod-dev/kudod/internal/lanes"
	"github.com/kudod-dev/kudod/internal/mask"
	"github.com/kudod-dev/kudod/internal/metrics"
	"github.com/kudod-dev/kudod/internal/parameters"
	"github.com/kudod-dev/kudod/internal/store"
	"github.com/kudod-dev/kudod/manifests"
)

// Options configure the controller.
type Options struct {
	// Client reads Instances from the manager's cache and writes their status.
	Client client.Client
	// Reader reads around the cache: an execution that follows another one starts from the
	// Instance as it is now, not from a cached copy that may miss what its predecessor just
	// recorded.
	Reader client.Reader
	// Engine runs plans.
	Engine *applier.Engine
	// Store finds the package each Instance names.
	Store    *store.Store
	Recorder events.EventRecorder
	Reporter forge.StatusReporter
	Metrics  *metrics.Metrics
	// DriftIntervals is each repository's drift interval (instances may set their own).
	DriftIntervals map[string]time.Duration
	// Gates are each repository's approval and windows (instances may set their own).
	Gates map[string]GateDefaults
	// Lanes are each repository's lane and service account policy (docs/security.md).
	Lanes map[string]lanes.Policy
	// StepTimeout bounds each step unless an instance sets its own.
	StepTimeout time.Duration
	// Workers is the number of reconciles at once.
	Workers int
	Log     logr.Logger
	// Now is the clock (tests).
	Now func() time.Time
	// HistoryLimit bounds status.history (DefaultHistoryLimit when zero).
	HistoryLimit int
	// Notifier is told how plans ended (nil: nobody is).
	Notifier Notifier
	// Masker learns the sensitive values plans render with, and masks what the controller
	// writes (docs/secrets.md).
	Masker *mask.Masker
}

// Controller runs the plans of Instances. Each plan runs in its own goroutine (an
// execution); reconciles start, supersede and abort executions and never wait for one.
type Controller struct {
	client         client.Client
	reader         client.Reader
	engine         *applier.Engine
	store          *store.Store
	recorder       events.EventRecorder
	reporter       forge.StatusReporter
	metrics        *metrics.Metrics
	driftIntervals map[string]time.Duration
	gateDefaults   map[string]GateDefaults
	lanes          map[string]lanes.Policy
	stepTimeout    time.Duration
	workers        int
	log            logr.Logger
	now            func() time.Time
	historyLimit   int
	notifier       Notifier
	masker         *mask.Masker
	// params resolves the values a plan renders with (Reader reads the Secrets and
	// ConfigMaps of parametersFrom directly, never through a cache).
	params *parameters.Resolver
	// rechecks holds the repositories whose instances are being queued by RecheckSources.
	rechecks sync.Map

	// ctx outlives reconciles: executions run on it.
	ctx     context.Context
	exited  chan event.GenericEvent
	mu      sync.Mutex
	running map[types.NamespacedName]*execution
	// ended is the UID of the last plan each instance's execution ended here: the reconcile
	// that follows an execution may read a cached Instance that does not show the end yet,
	// and must not start or resume that plan again.
	ended map[types.NamespacedName]string
	// driftChecked is when each instance's objects were last compared with the cluster; kept
	// in memory so an idle daemon writes nothing.
	driftChecked map[types.NamespacedName]time.Time
	// waits is the wait each instance's status last recorded here (types.NamespacedName →
	// v1alpha1.WaitingPlan): the cache may not show it yet at the next reconcile (gating.go).
	waits sync.Map
	// drift remembers what each instance's last clean drift check saw (drift_skip.go).
	drift driftMemo
}

// execution is a plan running for an instance.
type execution struct {
	request planStart
	cancel  context.CancelCauseFunc
	run     *applier.Run
	done    chan struct{}
	// ended is set when the plan ended (complete, failed, superseded, aborted) rather than
	// stopping to resume later.
	ended bool
}

// New returns a controller; SetupWithManager starts it with a manager.
func New(opts Options) *Controller {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &Controller{
		client: opts.Client, reader: opts.Reader, engine: opts.Engine, store: opts.Store, recorder: opts.Recorder,
		reporter: opts.Reporter, metrics: opts.Metrics, driftIntervals: opts.DriftIntervals, gateDefaults: opts.Gates, lanes: opts.Lanes, stepTimeout: opts.StepTimeout,
		workers: opts.Workers, log: opts.Log, now: opts.Now, historyLimit: opts.HistoryLimit, notifier: opts.Notifier, masker: opts.Masker,
		params:       &parameters.Resolver{Reader: opts.Reader, Git: opts.Store, Masker: opts.Masker},
		exited:       make(chan event.GenericEvent, 1024),
		running:      map[types.NamespacedName]*execution{},
		ended:        map[types.NamespacedName]string{},
		driftChecked: map[types.NamespacedName]time.Time{},
	}
}

// SetupWithManager registers the controller, and the runnable that holds its executions'
// context, with the manager.
func (r *Controller) SetupWithManager(mgr ctrl.Manager) error {
	if err := mgr.Add(manager.RunnableFunc(func(ctx context.Context) error {
		r.mu.Lock()
		r.ctx = ctx
		r.mu.Unlock()
		<-ctx.Done()
		r.stopAll()
		return nil
	})); err != nil {
		return err
	}
	if err := indexDependencies(context.Background(), mgr); err != nil {
		return err
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("instance").
		For(&v1alpha1.Instance{}).
		// Dependents wait for what they depend on, and removals go the other way: a change of
		// one Instance wakes those whose gates look at it (gating.go).
		Watches(&v1alpha1.Instance{}, handler.EnqueueRequestsFromMapFunc(r.related)).
		WatchesRawSource(source.Channel(r.exited, &handler.EnqueueRequestForObject{})).
		// Several daemons may share a process (tests, benchmarks): names need not be unique.
		WithOptions(controller.Options{MaxConcurrentReconciles: r.workers, SkipNameValidation: ptr.To(true)}).
		Complete(r)
}

// Reconcile decides what runs for one Instance.
func (r *Controller) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	inst := &v1alpha1.Instance{}
	if err := r.client.Get(ctx, req.NamespacedName, inst); err != nil {
		if apierrors.IsNotFound(err) {
			r.stop(req.NamespacedName, errStopped)
			r.mu.Lock()
			delete(r.ended, req.NamespacedName)
			delete(r.driftChecked, req.NamespacedName)
			r.mu.Unlock()
			r.drift.forget(req.NamespacedName)
			return ctrl.Result{}, nil
		}
		return ctrl.Result{}, err
	}
	if inst.DeletionTimestamp != nil {
		return r.finalize(ctx, inst)
	}
	if err := r.handleAbort(ctx, inst); err != nil {
		return ctrl.Result{}, err
	}
	if written, err := r.handleRollback(ctx, inst); written || err != nil {
		return ctrl.Result{}, err // the rolled-back spec comes with its own reconcile
	}
	want, err := r.wanted(ctx, inst)
	if err != nil {
		return ctrl.Result{}, err
	}
	r.mu.Lock()
	ex := r.running[req.NamespacedName]
	ended := r.ended[req.NamespacedName]
	r.mu.Unlock()
	if want != nil && want.uid == ended {
		want = nil
	}
	active := inst.Status.ActivePlan
	if active != nil && active.UID == ended {
		active = nil // the cache has not seen the end yet
	}
	runningPlan := ""
	switch {
	case ex != nil:
		runningPlan = ex.request.plan
		if want != nil && supersedes(*want, ex.request) && r.mayStart(ctx, inst, *want) {
			ex.cancel(&errSuperseded{by: describeStart(*want)})
			return ctrl.Result{}, nil // the execution's end enqueues this instance again
		}
	case active != nil:
		runningPlan = active.Name
	}
	sched, err := r.reconcileSchedules(ctx, inst, runningPlan)
	if err != nil {
		return ctrl.Result{}, err
	}
	result := ctrl.Result{RequeueAfter: sched.requeue}
	if ex != nil {
		if sched.replace && ex.run != nil {
			ex.run.StopAfterStep(&errSuperseded{by: "a Replace schedule"})
		}
		return result, nil
	}
	if inst.Spec.Suspend {
		return result, nil
	}
	switch {
	case active != nil && (want == nil || (want.trigger != v1alpha1.TriggerGit && want.trigger != v1alpha1.TriggerRollback)):
		// A plan was running when the daemon stopped: resume it, unless git asks for another.
		r.start(inst, resumeStart(inst, active))
	case want != nil && gated(inst, *want):
		// Dependencies, approval and windows (docs/operations.md).
		next, err := r.startGated(ctx, inst, *want)
		if next > 0 && (result.RequeueAfter == 0 || next < result.RequeueAfter) {
			result.RequeueAfter = next
		}
		return result, err
	case want != nil:
		r.start(inst, *want)
	case sched.start != nil:
		r.start(inst, *sched.start)
	default:
		// Idle: a changed Secret or ConfigMap of parametersFrom runs a plan as git would;
		// else compare the objects with what the plans applied.
		if requested, err := r.checkSources(ctx, inst); err != nil || requested {
			return result, err
		}
		next, err := r.reconcileDrift(ctx, inst)
		if next > 0 && (result.RequeueAfter == 0 || next < result.RequeueAfter) {
			result.RequeueAfter = next
		}
		return result, err
	}
	return result, nil
}

// wanted returns the plan the Instance asks for, if any: git's request first, then a manual
// trigger. A manual trigger while a plan runs is skipped unless it says replace.
func (r *Controller) wanted(ctx context.Context, inst *v1alpha1.Instance) (*planStart, error) {
	if req := inst.Spec.Plan; req != nil && req.UID != inst.Status.HandledPlanRequest {
		return gitStart(inst, req), nil
	}
	if ps, err := r.wantedRetry(ctx, inst); ps != nil || err != nil {
		return ps, err
	}
	raw, ok := inst.Annotations[v1alpha1.AnnotationTrigger]
	if !ok {
		return nil, nil
	}
	var mt v1alpha1.ManualTrigger
	if err := json.Unmarshal([]byte(raw), &mt); err != nil || mt.UID == "" || mt.UID == inst.Status.HandledTrigger {
		return nil, nil
	}
	running := r.isRunning(inst)
	if mt.Plan == manifests.PlanCleanup || (running && !mt.Replace) {
		reason := "a plan is running (use --replace to replace it)"
		if mt.Plan == manifests.PlanCleanup {
			reason = "the cleanup plan runs only when an instance is removed"
		}
		r.recorder.Eventf(inst, nil, corev1.EventTypeWarning, "TriggerSkipped", "RunPlan", "manual trigger of plan %s skipped: %s", mt.Plan, reason)
		return nil, r.patchStatus(ctx, inst, func(s *v1alpha1.InstanceStatus) { s.HandledTrigger = mt.UID })
	}
	return &planStart{plan: mt.Plan, uid: mt.UID, trigger: v1alpha1.TriggerManual, revision: inst.Spec.Source.Revision, reasons: []string{"triggered by " + userOr(mt.User)}, replace: mt.Replace, user: mt.User}, nil
}

func (r *Controller) isRunning(inst *v1alpha1.Instance) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.running[client.ObjectKeyFromObject(inst)]
	return ok || inst.Status.ActivePlan != nil
}

// handleAbort ends the running plan when `kudod abort` asked for it.
func (r *Controller) handleAbort(ctx context.Context, inst *v1alpha1.Instance) error {
	raw, ok := inst.Annotations[v1alpha1.AnnotationAbort]
	if !ok {
		return nil
	}
	var ar v1alpha1.AbortRequest
	if err := json.Unmarshal([]byte(raw), &ar); err != nil || ar.UID == "" || ar.UID == inst.Status.HandledAbort {
		return nil
	}
	key := client.ObjectKeyFromObject(inst)
	r.mu.Lock()
	ex := r.running[key]
	r.mu.Unlock()
	if ex != nil {
		ex.cancel(&errAborted{user: ar.User})
		<-ex.done
	}
	return r.patchStatus(ctx, inst, func(s *v1alpha1.InstanceStatus) {
		s.HandledAbort = ar.UID
		if ex == nil && s.ActivePlan != nil {
			// Recorded as running but not running here (a restart): end it in the status.
			msg := (&errAborted{user: ar.User}).Error()
			s.History = appendHistory(s.History, historyFromActive(s.ActivePlan, v1alpha1.StatusFatalError, v1alpha1.OutcomeAborted, msg, metav1.NewTime(r.now())), r.historyLimit)
			s.EndPlan(s.ActivePlan.UID, v1alpha1.StatusFatalError, msg, r.now())
		}
	})
}

// start launches an execution.
func (r *Controller) start(inst *v1alpha1.Instance, ps planStart) {
	key := client.ObjectKeyFromObject(inst)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ctx == nil || r.running[key] != nil {
		return
	}
	ctx, cancel := context.WithCancelCause(logr.NewContext(r.ctx, r.log.WithValues("instance", key.String(), "plan", ps.plan, "trigger", ps.trigger)))
	ex := &execution{request: ps, cancel: cancel, done: make(chan struct{})}
	_, hadEnded := r.ended[key]
	r.running[key] = ex
	r.metrics.ExecutionStarted()
	go func() {
		defer close(ex.done)
		defer r.metrics.ExecutionEnded()
		defer cancel(errStopped)
		current := inst.DeepCopy()
		if hadEnded {
			// The cache may not show yet what that execution recorded at its end.
			fresh := &v1alpha1.Instance{}
			if err := r.reader.Get(ctx, key, fresh); err == nil {
				current = fresh
			}
		}
		r.execute(ctx, ex, current)
		r.mu.Lock()
		delete(r.running, key)
		if ex.ended {
			r.ended[key] = ps.uid
		}
		r.mu.Unlock()
		r.requeue(inst)
	}()
}

// requeue asks for a reconcile of the instance; at shutdown, when nothing reads the queue
// any more, it gives up rather than block.
func (r *Controller) requeue(inst *v1alpha1.Instance) {
	select {
	case r.exited <- event.GenericEvent{Object: inst}:
	case <-r.ctx.Done():
	}
}

// stop ends an instance's execution without judging it (it resumes later).
func (r *Controller) stop(key types.NamespacedName, cause error) {
	r.mu.Lock()
	ex := r.running[key]
	r.mu.Unlock()
	if ex != nil {
		ex.cancel(cause)
	}
}

func (r *Controller) stopAll() {
	r.mu.Lock()
	var all []*execution
	for _, ex := range r.running {
		all = append(all, ex)
	}
	r.mu.Unlock()
	for _, ex := range all {
		ex.cancel(errStopped)
		<-ex.done
	}
}

// finalize cleans up a deleted Instance: its cleanup plan if the package has one, then every
// object of its inventory, then the finalizer goes.
func (r *Controller) finalize(ctx context.Context, inst *v1alpha1.Instance) (ctrl.Result, error) {
	if !controllerutil.ContainsFinalizer(inst, v1alpha1.FinalizerCleanup) {
		return ctrl.Result{}, nil
	}
	key := client.ObjectKeyFromObject(inst)
	eng, err := r.engineFor(inst)
	if err != nil {
		// Outside its repository's lane: kudod ran nothing of it, and deletes nothing of it.
		r.recorder.Eventf(inst, nil, corev1.EventTypeWarning, "Refused", "Reconcile", "instance removed without cleanup: %v", err)
		orig := inst.DeepCopy()
		controllerutil.RemoveFinalizer(inst, v1alpha1.FinalizerCleanup)
		return ctrl.Result{}, client.IgnoreNotFound(r.client.Patch(ctx, inst, client.MergeFrom(orig)))
	}
	r.mu.Lock()
	ex := r.running[key]
	r.mu.Unlock()
	cleanupUID := "cleanup-" + string(inst.UID)
	if ex != nil {
		if ex.request.uid != cleanupUID {
			ex.cancel(&errSuperseded{by: "the instance's removal"})
		}
		return ctrl.Result{}, nil
	}
	forced := r.abortRequested(inst)
	if !forced && !inst.Spec.Suspend && !cleanupStarted(inst, cleanupUID) {
		// Removal waits for what depends on the instance to be removed first, and for its
		// approval and windows (docs/operations.md); `kudod abort` skips the wait.
		ps := planStart{plan: manifests.PlanCleanup, uid: cleanupUID, trigger: v1alpha1.TriggerGit, revision: removedIn(inst), reasons: []string{"instance removed from git"}}
		if gated(inst, ps) {
			ok, next, err := r.gateRemoval(ctx, inst, ps)
			if err != nil {
				return ctrl.Result{}, err
			}
			if !ok {
				return ctrl.Result{RequeueAfter: next}, nil
			}
		}
	}
	pkg, err := r.store.InstancePackage(ctx, inst)
	if err != nil {
		r.log.Info("package unavailable: deleting the inventory without a cleanup plan", "instance", key.String(), "error", err.Error())
	}
	if pkg != nil && pkg.HasPlan(manifests.PlanCleanup) && !inst.Spec.Suspend && !forced {
		ps := inst.Status.Plan(manifests.PlanCleanup)
		switch {
		case ps == nil || ps.UID != cleanupUID:
			r.start(inst, planStart{plan: manifests.PlanCleanup, uid: cleanupUID, trigger: v1alpha1.TriggerGit, revision: removedIn(inst), reasons: []string{"instance removed from git"}})
			return ctrl.Result{}, nil
		case ps.Status == v1alpha1.StatusFatalError:
			// KUDO left such instances stuck; `kudod abort` deletes the objects anyway.
			return ctrl.Result{}, nil
		case ps.Status != v1alpha1.StatusComplete:
			r.start(inst, planStart{plan: manifests.PlanCleanup, uid: cleanupUID, trigger: v1alpha1.TriggerGit, revision: removedIn(inst), resume: true})
			return ctrl.Result{}, nil
		}
	}
	if !inst.Spec.Suspend {
		objs, err := applier.NewInventory(inst.Status.Inventory).Objects()
		if err != nil {
			return ctrl.Result{}, err
		}
		if _, err := eng.DeleteObjects(ctx, inst, objs); err != nil {
			return ctrl.Result{}, fmt.Errorf("delete objects of %s: %w", key, err)
		}
	}
	r.recorder.Eventf(inst, nil, corev1.EventTypeNormal, "Deleted", "Reconcile", "instance removed: %d objects deleted", len(inst.Status.Inventory))
	if sha := removedIn(inst); sha != "" && !inst.Spec.Suspend {
		r.reporter.Report(forge.Status{Repository: inst.Spec.Source.Repository, SHA: sha, Context: forge.InstanceContext(inst.Namespace, inst.Name), State: forge.StateSuccess, Description: fmt.Sprintf("cleanup COMPLETE: %d objects deleted", len(inst.Status.Inventory))})
	}
	orig := inst.DeepCopy()
	controllerutil.RemoveFinalizer(inst, v1alpha1.FinalizerCleanup)
	if err := r.client.Patch(ctx, inst, client.MergeFrom(orig)); err != nil && !apierrors.IsNotFound(err) {
		return ctrl.Result{}, err
	}
	return ctrl.Result{}, nil
}

func (r *Controller) abortRequested(inst *v1alpha1.Instance) bool {
	raw, ok := inst.Annotations[v1alpha1.AnnotationAbort]
	if !ok {
		return false
	}
	var ar v1alpha1.AbortRequest
	return json.Unmarshal([]byte(raw), &ar) == nil && ar.UID != ""
}

func removedIn(inst *v1alpha1.Instance) string {
	if sha := inst.Annotations[v1alpha1.AnnotationRemovedIn]; sha != "" {
		return sha
	}
	return inst.Spec.Source.Revision
}

// patchStatus changes an Instance's status with a merge patch of just what changed; no message
// it writes shows a sensitive value.
func (r *Controller) patchStatus(ctx context.Context, inst *v1alpha1.Instance, mutate func(*v1alpha1.InstanceStatus)) error {
	orig := inst.DeepCopy()
	mutate(&inst.Status)
	maskStatus(r.masker, &inst.Status)
	if err := r.client.Status().Patch(ctx, inst, client.MergeFrom(orig)); err != nil {
		return fmt.Errorf("update status of %s/%s: %w", inst.Namespace, inst.Name, err)
	}
	return nil
}
