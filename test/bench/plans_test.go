package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// planTracker follows the last plan of every Instance of one repository with a watch, so
// that a figure ends when the event that completes it arrives, without listing a thousand
// Instances over and over on the API server being measured.
type planTracker struct {
	mu    sync.Mutex
	plans trackedPlans
	// changed is closed and replaced on every change.
	changed chan struct{}
	err     error
}

// trackPlans watches the Instances labelled with the repository until ctx ends.
func trackPlans(ctx context.Context, c client.WithWatch, repository string) *planTracker {
	tr := &planTracker{plans: newTrackedPlans(), changed: make(chan struct{})}
	go tr.run(ctx, c, client.MatchingLabels{v1alpha1.LabelRepository: repository})
	return tr
}

func (tr *planTracker) run(ctx context.Context, c client.WithWatch, sel client.MatchingLabels) {
	for ctx.Err() == nil {
		err := tr.listAndWatch(ctx, c, sel)
		if err != nil && ctx.Err() == nil {
			tr.mu.Lock()
			tr.err = err
			tr.mu.Unlock()
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
}

// listAndWatch lists the Instances, then follows changes until the watch ends.
func (tr *planTracker) listAndWatch(ctx context.Context, c client.WithWatch, sel client.MatchingLabels) error {
	var list v1alpha1.InstanceList
	if err := c.List(ctx, &list, sel); err != nil {
		return fmt.Errorf("list instances: %w", err)
	}
	tr.mu.Lock()
	tr.plans = newTrackedPlans()
	for i := range list.Items {
		tr.plans.set(&list.Items[i])
	}
	tr.notifyLocked()
	tr.mu.Unlock()
	w, err := c.Watch(ctx, &v1alpha1.InstanceList{}, sel, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: list.ResourceVersion}})
	if err != nil {
		return fmt.Errorf("watch instances: %w", err)
	}
	defer w.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-w.ResultChan():
			if !ok {
				return nil
			}
			switch ev.Type {
			case watch.Error:
				return fmt.Errorf("watch instances: %w", apierrors.FromObject(ev.Object))
			case watch.Added, watch.Modified, watch.Deleted:
				in, ok := ev.Object.(*v1alpha1.Instance)
				if !ok {
					continue
				}
				tr.mu.Lock()
				if ev.Type == watch.Deleted {
					tr.plans.remove(instanceRef{Namespace: in.Namespace, Name: in.Name})
				} else {
					tr.plans.set(in)
				}
				tr.notifyLocked()
				tr.mu.Unlock()
			}
		}
	}
}

// trackedPlans are the last plans of the tracked Instances, with how many there are of each
// plan and status: a condition over every Instance reads the counts, where walking the
// Instances on each of the watch's events made a cold start's harness O(n²) (at 10,000
// Instances, tens of thousands of events each walking 10,000 entries, on the cores the API
// server being measured runs on).
type trackedPlans struct {
	byRef  map[instanceRef]v1alpha1.PlanSummary
	counts map[planState]int
}

type planState struct {
	name   string
	status v1alpha1.ExecutionStatus
}

func newTrackedPlans() trackedPlans {
	return trackedPlans{byRef: map[instanceRef]v1alpha1.PlanSummary{}, counts: map[planState]int{}}
}

func (p trackedPlans) set(in *v1alpha1.Instance) {
	var last v1alpha1.PlanSummary
	if in.Status.LastPlan != nil {
		last = *in.Status.LastPlan
	}
	ref := instanceRef{Namespace: in.Namespace, Name: in.Name}
	p.remove(ref)
	p.byRef[ref] = last
	p.counts[planState{last.Name, last.Status}]++
}

func (p trackedPlans) remove(ref instanceRef) {
	if old, ok := p.byRef[ref]; ok {
		p.counts[planState{old.Name, old.Status}]--
		delete(p.byRef, ref)
	}
}

// len is how many Instances are tracked.
func (p trackedPlans) len() int { return len(p.byRef) }

// last is ref's last plan; the zero summary when it has none or is not tracked.
func (p trackedPlans) last(ref instanceRef) v1alpha1.PlanSummary { return p.byRef[ref] }

// completed counts the Instances whose last plan is named plan and COMPLETE.
func (p trackedPlans) completed(plan string) int {
	return p.counts[planState{plan, v1alpha1.StatusComplete}]
}

func (tr *planTracker) notifyLocked() {
	close(tr.changed)
	tr.changed = make(chan struct{})
}

// await returns when cond holds for the tracked plans, with the time it was first seen to
// hold. On ctx's end, the error carries describe's account of the plans at that moment.
func (tr *planTracker) await(ctx context.Context, cond func(trackedPlans) bool, describe func(trackedPlans) string) (time.Time, error) {
	for {
		tr.mu.Lock()
		ok := cond(tr.plans)
		changed := tr.changed
		tr.mu.Unlock()
		if ok {
			return time.Now(), nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			tr.mu.Lock()
			defer tr.mu.Unlock()
			msg := describe(tr.plans)
			if tr.err != nil {
				msg += fmt.Sprintf(" (last watch error: %v)", tr.err)
			}
			return time.Time{}, fmt.Errorf("%w: %s", context.Cause(ctx), msg)
		}
	}
}

// describePlans summarises plans by name and status, e.g. "1000 instances: deploy COMPLETE 998, deploy IN_PROGRESS 2".
func describePlans(plans trackedPlans) string {
	counts := map[string]int{}
	for s, n := range plans.counts {
		key := "no plan"
		if s.name != "" {
			key = s.name + " " + string(s.status)
		}
		if n > 0 {
			counts[key] += n
		}
	}
	return fmt.Sprintf("%d instances: %v", plans.len(), counts)
}
