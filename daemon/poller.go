package daemon

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sync/singleflight"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/manifests"
	"github.com/kudod-dev/kudod/planner"
	"github.com/kudod-dev/kudod/sources"
)

// actConcurrency is how many Instances a poll applies at once.
const actConcurrency = 16

// Repository is one configured git repository the daemon follows.
type Repository struct {
	// Name is the repository's name in the configuration.
	Name string
	// Source reads the repository.
	Source gitSource
	// Interval between polls.
	Interval time.Duration
	// URL and Ref describe the source in `kudod status --sources` (no credentials).
	URL, Ref string
	// PreviewRefs are path.Match patterns of refs to preview (refs/pull/*/head).
	PreviewRefs []string
	// Path is the folder to scan.
	Path string
	// Prune cleans up instances removed from git (default true).
	Prune bool
	// AllowEmpty lets a commit remove every instance.
	AllowEmpty bool
	// DriftInterval is how often live objects are compared with what plans applied.
	DriftInterval time.Duration
}

// poller follows one repository: each poll takes a snapshot, indexes it, plans it against the
// Instances in the cluster, and applies the Instances whose desired state changed. Plans
// themselves run in the Instance controller.
type poller struct {
	repo     Repository
	reporter StatusReporter
	metrics  *daemonMetrics
	previews *previewQueue
	client   client.Client
	store    *packageStore
	recorder events.EventRecorder
	log      logr.Logger
	wake     chan struct{}

	mu sync.Mutex
	// acted is the commit whose decisions were all carried out; polls of it do nothing.
	acted string
	// last records the last poll, for `kudod status --sources`.
	last pollRecord
	// namespaces known to exist.
	namespaces        map[string]bool
	namespaceCreation singleflight.Group
	// recorded is the source status last written, and when.
	recorded    SourceStatus
	recordedAt  time.Time
	statusNS    string
	handledWake string
	describeRef string
	describeURL string
}

type pollRecord struct {
	time     time.Time
	revision string
	err      error
}

func newPoller(repo Repository, store *packageStore, statusNamespace string, log logr.Logger) *poller {
	return &poller{repo: repo, store: store, statusNS: statusNamespace, describeURL: repo.URL, describeRef: repo.Ref, log: log.WithValues("repository", repo.Name), wake: make(chan struct{}, 1), namespaces: map[string]bool{}}
}

// attach gives the poller the cluster once the manager exists.
func (p *poller) attach(c client.Client, recorder events.EventRecorder, reporter StatusReporter, m *daemonMetrics) {
	p.client, p.recorder, p.reporter, p.metrics = c, recorder, reporter, m
}

// wakeFor wakes the poller for a `kudod reconcile` request it has not handled yet.
func (p *poller) wakeFor(request string) {
	p.mu.Lock()
	fresh := request != "" && request != p.handledWake
	if fresh {
		p.handledWake = request
	}
	p.mu.Unlock()
	if fresh {
		p.Wake()
	}
}

// recordSource writes the repository's status when it changed, and at least every
// sourceHeartbeat: an idle daemon makes no API writes.
func (p *poller) recordSource(ctx context.Context, next time.Time) {
	p.mu.Lock()
	rec := p.last
	cur := SourceStatus{Repository: p.repo.Name, URL: p.describeURL, Ref: p.describeRef, Revision: rec.revision, LastPoll: rec.time, NextPoll: next, Interval: p.repo.Interval.String(), LastHandledReconcile: p.handledWake}
	if rec.err != nil {
		cur.LastError = rec.err.Error()
		cur.Revision = p.recorded.Revision // the last revision fetched, kept through errors
	}
	due := !sameRecord(cur, p.recorded) || time.Since(p.recordedAt) > sourceHeartbeat
	p.mu.Unlock()
	if !due || p.statusNS == "" {
		return
	}
	if err := writeSourceStatus(ctx, p.client, p.statusNS, cur); err != nil {
		p.log.Error(err, "recording the source status")
		return
	}
	p.mu.Lock()
	p.recorded, p.recordedAt = cur, time.Now()
	p.mu.Unlock()
}

// Wake asks for a poll now (webhook, `kudod reconcile`).
func (p *poller) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// run polls until ctx ends.
func (p *poller) run(ctx context.Context) {
	for {
		if err := p.pollOnce(ctx); err != nil && ctx.Err() == nil {
			p.log.Error(err, "poll failed")
		}
		if p.previews != nil {
			p.previews.discover(ctx, p)
		}
		wait := jitter(p.repo.Interval, rand.Float64())
		p.recordSource(ctx, time.Now().Add(wait))
		select {
		case <-ctx.Done():
			return
		case <-p.wake:
		case <-time.After(wait):
		}
	}
}

// pollOnce is one poll: snapshot → index → plan → apply Instances.
func (p *poller) pollOnce(ctx context.Context) (err error) {
	start := time.Now()
	fetchesBefore := p.repo.Source.Stats().Fetches
	snap, _, err := p.repo.Source.Poll(ctx)
	defer func() {
		p.mu.Lock()
		p.last = pollRecord{time: start, revision: snap.Commit, err: err}
		p.mu.Unlock()
		p.metrics.pollDuration.WithLabelValues(p.repo.Name).Observe(time.Since(start).Seconds())
		if n := p.repo.Source.Stats().Fetches - fetchesBefore; n > 0 {
			p.metrics.fetches.WithLabelValues(p.repo.Name).Add(float64(n))
		}
		if err != nil {
			p.metrics.pollErrors.WithLabelValues(p.repo.Name).Inc()
		}
	}()
	if err != nil {
		return fmt.Errorf("poll %s: %w", p.repo.Name, err)
	}
	p.mu.Lock()
	acted := p.acted
	p.mu.Unlock()
	if acted == snap.Commit {
		return nil
	}
	log := p.log.WithValues("revision", short(snap.Commit))
	idx, err := manifests.IndexRepository(snap.FS, manifests.IndexOptions{Path: p.repo.Path, Cache: p.store.cache})
	if err != nil {
		return fmt.Errorf("index %s at %s: %w", p.repo.Name, short(snap.Commit), err)
	}
	p.store.remember(p.repo.Name, snap.Commit, idx)
	var list v1alpha1.InstanceList
	if err := p.client.List(ctx, &list, client.MatchingLabels{v1alpha1.LabelRepository: p.repo.Name}); err != nil {
		return fmt.Errorf("list instances of %s: %w", p.repo.Name, err)
	}
	existing := topLevel(list.Items)
	old := clusterSide(ctx, p.store, p.repo.Name, existing, idx, p.log)
	res := planner.Diff(old, planner.FromIndex(idx), planner.Options{AllowEmpty: p.repo.AllowEmpty, NoPrune: !p.repo.Prune})
	log.Info("planned", "instances", len(idx.Instances), "changes", countChanges(res))
	if res.Held != nil {
		p.reporter.Report(CommitStatus{Repository: p.repo.Name, SHA: snap.Commit, Context: "kudod", State: StateFailure, Description: truncate(res.Held.Error(), 139)})
		p.markActed(snap.Commit)
		return res.Held
	}
	// Instances are applied several at a time: a thousand new instances are a thousand
	// round trips, and the plans of the first start while the last are still being written.
	var mu sync.Mutex
	var errs []error
	g := errgroup.Group{}
	g.SetLimit(actConcurrency)
	for i := range res.Decisions {
		d := &res.Decisions[i]
		if d.Action == planner.ActionNone && d.New == nil {
			continue
		}
		g.Go(func() error {
			if err := p.act(ctx, snap, d, existing[d.Key()]); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
			return nil
		})
	}
	_ = g.Wait()
	if err := errors.Join(errs...); err != nil {
		return err // acted stays behind: the next poll tries again
	}
	p.markActed(snap.Commit)
	return nil
}

func (p *poller) markActed(commit string) {
	p.mu.Lock()
	prev := p.acted
	p.acted = commit
	p.mu.Unlock()
	if prev != "" && prev != commit {
		p.metrics.appliedRevision.DeleteLabelValues(p.repo.Name, prev)
	}
	p.metrics.appliedRevision.WithLabelValues(p.repo.Name, commit).Set(1)
}

// topLevel maps the Instances that come from git (not KudoOperator children) by key.
func topLevel(items []v1alpha1.Instance) map[string]*v1alpha1.Instance {
	existing := map[string]*v1alpha1.Instance{}
	for i := range items {
		in := &items[i]
		if _, child := in.Labels[v1alpha1.LabelParent]; child {
			continue
		}
		existing[in.Namespace+"/"+in.Name] = in
	}
	return existing
}

func countChanges(res planner.Result) int {
	n := 0
	for i := range res.Decisions {
		if res.Decisions[i].Changes() {
			n++
		}
	}
	return n
}

// clusterSide is the planner's old side: what each Instance in the cluster last accepted.
func clusterSide(ctx context.Context, store *packageStore, repository string, existing map[string]*v1alpha1.Instance, current *manifests.Index, log logr.Logger) planner.Side {
	side := planner.Side{Instances: map[string]*planner.State{}, Invalid: map[string]string{}, BrokenFiles: map[string]string{}}
	for key, in := range existing {
		if in.DeletionTimestamp != nil {
			continue // being cleaned up: if git has it again, it is new once the cleanup is done
		}
		pkg := oldPackage(ctx, store, repository, in, current, log)
		side.Instances[key] = &planner.State{
			Namespace:      in.Namespace,
			Name:           in.Name,
			Package:        pkg,
			Parameters:     in.Spec.Parameters,
			File:           in.Spec.Source.Path,
			Suspend:        in.Spec.Suspend,
			NeverCompleted: in.Status.Applied == nil,
		}
	}
	return side
}

// oldPackage returns the package an Instance was last planned with. When git no longer has it
// (a force-push wiped the commit from the cache), the current package stands in with the old
// versions and digest, so the planner still sees a version or template change.
func oldPackage(ctx context.Context, store *packageStore, repository string, in *v1alpha1.Instance, current *manifests.Index, log logr.Logger) *manifests.Package {
	pkg, err := store.packageAt(ctx, repository, in.Spec.Source.Revision, in.Spec.Source.PackagePath, in.Spec.PackageDigest)
	if err == nil {
		return pkg
	}
	log.V(1).Info("old package not available; comparing against the current one", "instance", in.Namespace+"/"+in.Name, "error", err.Error())
	stand := &manifests.Package{Name: in.Spec.Operator.Name, OperatorVersion: in.Spec.Operator.Version, AppVersion: in.Spec.Operator.AppVersion, Digest: in.Spec.PackageDigest, Plans: map[string]*manifests.Plan{}}
	if cur := current.Package(in.Spec.Operator.Name, "", ""); cur != nil {
		c := *cur
		c.OperatorVersion, c.AppVersion, c.Digest = stand.OperatorVersion, stand.AppVersion, stand.Digest
		return &c
	}
	return stand
}

// act carries out one decision.
func (p *poller) act(ctx context.Context, snap sources.Snapshot, d *planner.Decision, existing *v1alpha1.Instance) error {
	log := p.log.WithValues("instance", d.Key(), "action", d.Action, "plan", d.Plan)
	switch d.Action {
	case planner.ActionRejected:
		log.Info("change rejected", "reason", d.Error)
		p.reporter.Report(CommitStatus{Repository: p.repo.Name, SHA: snap.Commit, Context: instanceContext(d.Namespace, d.Instance), State: StateFailure, Description: truncate("rejected: "+d.Error, 139)})
		if existing != nil {
			p.recorder.Eventf(existing, nil, corev1.EventTypeWarning, "ChangeRejected", "Reconcile", "commit %s rejected: %s", short(snap.Commit), d.Error)
		}
		return nil
	case planner.ActionCleanup:
		if existing == nil || existing.DeletionTimestamp != nil {
			return nil
		}
		log.Info("instance removed from git: cleaning up")
		// The cleanup reports to the commit that removed the instance.
		patch := client.MergeFrom(existing.DeepCopy())
		if existing.Annotations == nil {
			existing.Annotations = map[string]string{}
		}
		existing.Annotations[v1alpha1.AnnotationRemovedIn] = snap.Commit
		if err := p.client.Patch(ctx, existing, patch); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("mark instance %s removed: %w", d.Key(), err)
		}
		if err := p.client.Delete(ctx, existing); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete instance %s: %w", d.Key(), err)
		}
		return nil
	case planner.ActionNone:
		if d.New == nil || existing == nil {
			return nil
		}
		want := desiredInstance(p.repo.Name, existing.Spec.Source.Revision, d.New.Instance, existing.Spec.Plan)
		if sameSpec(existing, want) {
			return nil
		}
		// Schedules, suspension or settings changed: no plan runs.
		want.Spec.Source.Revision = snap.Commit
		return p.apply(ctx, want)
	default:
		if existing != nil && existing.DeletionTimestamp != nil {
			return fmt.Errorf("instance %s is still being cleaned up; it is applied again once that is done", d.Key())
		}
		if err := p.ensureNamespace(ctx, d.Namespace); err != nil {
			return err
		}
		req := &v1alpha1.PlanRequest{Name: d.Plan, UID: string(uuid.NewUUID()), Action: string(d.Action), Reasons: d.Reasons}
		log.Info("applying desired state", "reasons", strings.Join(d.Reasons, "; "))
		return p.apply(ctx, desiredInstance(p.repo.Name, snap.Commit, d.New.Instance, req))
	}
}

func (p *poller) apply(ctx context.Context, inst *v1alpha1.Instance) error {
	if err := applier.ServerSideApply(ctx, p.client, inst); err != nil {
		return fmt.Errorf("apply instance %s/%s: %w", inst.Namespace, inst.Name, err)
	}
	return nil
}

// ensureNamespace creates an instance's namespace if it is missing, labelled as created by
// kudod; kudod never deletes it.
func (p *poller) ensureNamespace(ctx context.Context, name string) error {
	p.mu.Lock()
	known := p.namespaces[name]
	p.mu.Unlock()
	if known {
		return nil
	}
	// Instances are applied concurrently: one creation per namespace, the others wait for it.
	_, err, _ := p.namespaceCreation.Do(name, func() (any, error) {
		if err := ensureNamespace(ctx, p.client, name); err != nil {
			return nil, err
		}
		p.mu.Lock()
		p.namespaces[name] = true
		p.mu.Unlock()
		return nil, nil
	})
	return err
}

func ensureNamespace(ctx context.Context, c client.Client, name string) error {
	ns := &corev1.Namespace{}
	err := c.Get(ctx, types.NamespacedName{Name: name}, ns)
	if err == nil {
		return nil
	}
	if !apierrors.IsNotFound(err) {
		return fmt.Errorf("read namespace %s: %w", name, err)
	}
	ns = &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: map[string]string{v1alpha1.LabelManagedBy: "kudod"}}}
	if err := c.Create(ctx, ns); err != nil && !apierrors.IsAlreadyExists(err) {
		return fmt.Errorf("create namespace %s: %w", name, err)
	}
	return nil
}

// jitter spreads poll intervals by ±5%, as Flux does, so repositories do not poll in lockstep.
func jitter(d time.Duration, r float64) time.Duration {
	return d + time.Duration((r*2-1)*0.05*float64(d))
}
