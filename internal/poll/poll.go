// Package poll follows repositories: each poll takes a git snapshot, plans it against the
// cluster (desired.Planner) and carries the decisions out by applying Instance objects,
// creating their namespaces and reporting rejected changes; the repository's status is
// recorded for `kudod status --sources`. Plans themselves run in the Instance controller.
package poll

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
	"k8s.io/apimachinery/pkg/util/uuid"
	"k8s.io/client-go/tools/events"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/internal/desired"
	"github.com/kudod-dev/kudod/internal/forge"
	"github.com/kudod-dev/kudod/internal/metrics"
	"github.com/kudod-dev/kudod/planner"
	"github.com/kudod-dev/kudod/sources"
)

// actConcurrency is how many Instances a poll applies at once.
const actConcurrency = 16

// Source is what polling needs of a git repository (sources.Source).
type Source interface {
	Poll(ctx context.Context) (sources.Snapshot, bool, error)
	Stats() sources.Stats
}

// Repository is one repository to follow.
type Repository struct {
	desired.Repository
	// Source reads the repository.
	Source Source
	// Interval between polls.
	Interval time.Duration
	// URL and Ref describe the source in `kudod status --sources` (no credentials).
	URL, Ref string
}

// Options are what every poller shares.
type Options struct {
	// Client applies Instances and namespaces and records the source status.
	Client client.Client
	// Reader reads around the cache (the manager's API reader): whether a namespace exists
	// (nil: Client).
	Reader client.Reader
	// Planner plans each new snapshot against the cluster.
	Planner  *desired.Planner
	Recorder events.EventRecorder
	Reporter forge.StatusReporter
	Metrics  *metrics.Metrics
	// StatusNamespace holds the repositories' status ConfigMaps ("" records none).
	StatusNamespace string
	// Polled runs after each poll, before the wait for the next one (the daemon queues the
	// repository's previews with it).
	Polled func(ctx context.Context)
	Log    logr.Logger
}

// Poller follows one repository.
type Poller struct {
	repo Repository
	opts Options
	log  logr.Logger
	wake chan struct{}

	mu sync.Mutex
	// acted is the commit whose decisions were all carried out; polls of it do nothing.
	acted string
	// last records the last poll, for `kudod status --sources`.
	last pollRecord
	// namespaces known to exist.
	namespaces        map[string]bool
	namespaceCreation singleflight.Group
	// recorded is the source status last written, and when.
	recorded    v1alpha1.SourceStatus
	recordedAt  time.Time
	handledWake string
	// held is a commit held since the source status was last recorded, for an event on it.
	held *heldCommit
	// failedLast is the commit and finding last reported as failed: a commit planned again on
	// every poll (files that cannot be decrypted) reports each finding once.
	failedLast string
	// sameSpecs and nextSameSpecs are what the last commit and this one found unchanged
	// (samespec.go).
	sameSpecs, nextSameSpecs map[string]sameSpec
}

type pollRecord struct {
	time     time.Time
	revision string
	err      error
}

// New returns the poller of a repository.
func New(repo Repository, opts Options) *Poller {
	return &Poller{repo: repo, opts: opts, log: opts.Log.WithValues("repository", repo.Name), wake: make(chan struct{}, 1), namespaces: map[string]bool{}}
}

// Wake asks for a poll now (webhook, `kudod reconcile`).
func (p *Poller) Wake() {
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// WakeFor wakes the poller for a `kudod reconcile` request it has not handled yet.
func (p *Poller) WakeFor(request string) {
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

// Run polls until ctx ends.
func (p *Poller) Run(ctx context.Context) {
	for {
		if err := p.pollOnce(ctx); err != nil && ctx.Err() == nil {
			p.log.Error(err, "poll failed")
		}
		if p.opts.Polled != nil {
			p.opts.Polled(ctx)
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

// jitter spreads poll intervals by ±5%, as Flux does, so repositories do not poll in lockstep;
// r is a random number in [0, 1).
func jitter(d time.Duration, r float64) time.Duration {
	return d + time.Duration((r*2-1)*0.05*float64(d))
}

// pollOnce is one poll: snapshot → plan against the cluster → apply Instances.
func (p *Poller) pollOnce(ctx context.Context) (err error) {
	start := time.Now()
	fetchesBefore := p.repo.Source.Stats().Fetches
	snap, _, err := p.repo.Source.Poll(ctx)
	defer func() {
		p.mu.Lock()
		p.last = pollRecord{time: start, revision: snap.Commit, err: err}
		p.mu.Unlock()
		p.opts.Metrics.Polled(p.repo.Name, time.Since(start), p.repo.Source.Stats().Fetches-fetchesBefore, err != nil)
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
	plan, err := p.opts.Planner.Plan(ctx, p.repo.Repository, snap)
	if err != nil {
		return err
	}
	p.log.Info("planned", "revision", v1alpha1.ShortRevision(snap.Commit), "instances", len(plan.Index.Instances), "changes", countChanges(plan.Result))
	undecrypted := plan.Index.DecryptErrors
	if plan.Held != nil {
		// Reported once per commit and finding: a commit held because a file cannot be
		// decrypted is planned again on every poll (below), with nothing new to say until
		// the key arrives.
		if p.firstFailure(snap.Commit, plan.Held.Error()) {
			p.mu.Lock()
			p.held = &heldCommit{commit: snap.Commit, err: plan.Held}
			p.mu.Unlock()
			if len(undecrypted) > 0 {
				p.log.Info("cannot decrypt", "files", len(undecrypted), "first", undecrypted[0].Error())
			}
			p.opts.Reporter.Report(forge.Status{Repository: p.repo.Name, SHA: snap.Commit, Context: forge.ContextRepository, State: forge.StateFailure, Description: plan.Held.Error()})
		}
		if len(undecrypted) == 0 {
			p.markActed(snap.Commit)
		}
		// With files that cannot be decrypted, acted stays behind: the commit is planned
		// again on the next poll with the keys as they are then, so a key added to the
		// decryption Secret applies without a new commit (docs/secrets.md).
		return plan.Held
	}
	if len(undecrypted) > 0 && p.firstFailure(snap.Commit, undecrypted[0].Error()) {
		// An encrypted file that cannot be decrypted may hold instances nobody can name: the
		// commit fails as a whole (docs/secrets.md).
		p.log.Info("cannot decrypt", "files", len(undecrypted), "first", undecrypted[0].Error())
		p.opts.Reporter.Report(forge.Status{Repository: p.repo.Name, SHA: snap.Commit, Context: forge.ContextRepository, State: forge.StateFailure, Description: undecrypted[0].Error()})
	}
	// Instances are applied several at a time: a thousand new instances are a thousand
	// round trips, and the plans of the first start while the last are still being written.
	// They are applied in the order of their plans (docs/operations.md, Ordering): an instance
	// is written only after what it depends on, so the Instance controller never sees a
	// dependent's new plan next to its dependency's old, settled state. A wave that fails
	// stops the later ones.
	p.startSameSpecs()
	defer p.endSameSpecs()
	for _, wave := range actWaves(plan.Decisions) {
		var mu sync.Mutex
		var errs []error
		g := errgroup.Group{}
		g.SetLimit(actConcurrency)
		for _, d := range wave {
			g.Go(func() error {
				if err := p.act(ctx, snap, d, plan.Existing[d.Key()]); err != nil {
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
	}
	if len(undecrypted) > 0 {
		// The commit is planned again on the next poll, with the keys as they are then: a key
		// added to the decryption Secret applies without a new commit.
		return fmt.Errorf("%d files cannot be decrypted: %w", len(undecrypted), undecrypted[0])
	}
	p.markActed(snap.Commit)
	return nil
}

// actWaves groups the decisions to act on by the order of their plans: first those that run
// none (rejections, settings), then the plans of order 1, 2, ...
func actWaves(decisions []planner.Decision) [][]*planner.Decision {
	var waves [][]*planner.Decision
	for i := range decisions {
		d := &decisions[i]
		if d.Action == planner.ActionNone && d.New == nil {
			continue
		}
		for len(waves) <= d.Order {
			waves = append(waves, nil)
		}
		waves[d.Order] = append(waves[d.Order], d)
	}
	return waves
}

func (p *Poller) markActed(commit string) {
	p.mu.Lock()
	prev := p.acted
	p.acted = commit
	p.mu.Unlock()
	p.opts.Metrics.Acted(p.repo.Name, prev, commit)
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

// act carries out one decision.
func (p *Poller) act(ctx context.Context, snap sources.Snapshot, d *planner.Decision, existing *v1alpha1.Instance) error {
	log := p.log.WithValues("revision", v1alpha1.ShortRevision(snap.Commit), "instance", d.Key(), "action", d.Action, "plan", d.Plan)
	switch d.Action {
	case planner.ActionRejected:
		log.Info("change rejected", "reason", d.Error)
		p.opts.Reporter.Report(forge.Status{Repository: p.repo.Name, SHA: snap.Commit, Context: forge.InstanceContext(d.Namespace, d.Instance), State: forge.StateFailure, Description: "rejected: " + d.Error})
		if existing != nil {
			p.opts.Recorder.Eventf(existing, nil, corev1.EventTypeWarning, "ChangeRejected", "Reconcile", "commit %s rejected: %s", v1alpha1.ShortRevision(snap.Commit), d.Error)
		}
		return nil
	case planner.ActionCleanup:
		if existing == nil || existing.DeletionTimestamp != nil {
			return nil
		}
		log.Info("instance removed from git: cleaning up")
		// The cleanup reports to the commit that removed the instance. existing is the
		// cache's object (desired.Plan): change a copy.
		existing = existing.DeepCopy()
		patch := client.MergeFrom(existing.DeepCopy())
		if existing.Annotations == nil {
			existing.Annotations = map[string]string{}
		}
		existing.Annotations[v1alpha1.AnnotationRemovedIn] = snap.Commit
		if err := p.opts.Client.Patch(ctx, existing, patch); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("mark instance %s removed: %w", d.Key(), err)
		}
		if err := p.opts.Client.Delete(ctx, existing); err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete instance %s: %w", d.Key(), err)
		}
		return nil
	case planner.ActionNone:
		if d.New == nil || existing == nil {
			return nil
		}
		if p.sameAsBefore(d.Key(), d.New.Instance, existing) {
			return nil
		}
		want := desired.Instance(p.repo.Name, existing.Spec.Source.Revision, d.New.Instance, existing.Spec.Plan)
		if existing.Status.RolledBack != nil {
			// Git moved on from the commit rolled back, to what the instance runs already.
			return p.endRollback(ctx, existing, want, snap.Commit)
		}
		if desired.SameSpec(existing, want) {
			p.rememberSame(d.Key(), d.New.Instance, existing)
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
		return p.apply(ctx, desired.Instance(p.repo.Name, snap.Commit, d.New.Instance, req))
	}
}

func (p *Poller) apply(ctx context.Context, inst *v1alpha1.Instance) error {
	if err := applier.ServerSideApply(ctx, p.opts.Client, inst); err != nil {
		return fmt.Errorf("apply instance %s/%s: %w", inst.Namespace, inst.Name, err)
	}
	return nil
}

// firstFailure reports whether finding is new for commit, and remembers it: a commit planned
// again on every poll reports each of its failures once, not once per poll.
func (p *Poller) firstFailure(commit, finding string) bool {
	key := commit + "\n" + finding
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.failedLast == key {
		return false
	}
	p.failedLast = key
	return true
}
