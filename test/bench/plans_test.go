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
	plans map[instanceRef]v1alpha1.PlanSummary
	// changed is closed and replaced on every change.
	changed chan struct{}
	err     error
}

// trackPlans watches the Instances labelled with the repository until ctx ends.
func trackPlans(ctx context.Context, c client.WithWatch, repository string) *planTracker {
	tr := &planTracker{plans: map[instanceRef]v1alpha1.PlanSummary{}, changed: make(chan struct{})}
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
	tr.plans = map[instanceRef]v1alpha1.PlanSummary{}
	for i := range list.Items {
		tr.setLocked(&list.Items[i])
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
					delete(tr.plans, instanceRef{Namespace: in.Namespace, Name: in.Name})
				} else {
					tr.setLocked(in)
				}
				tr.notifyLocked()
				tr.mu.Unlock()
			}
		}
	}
}

func (tr *planTracker) setLocked(in *v1alpha1.Instance) {
	var last v1alpha1.PlanSummary
	if in.Status.LastPlan != nil {
		last = *in.Status.LastPlan
	}
	tr.plans[instanceRef{Namespace: in.Namespace, Name: in.Name}] = last
}

func (tr *planTracker) notifyLocked() {
	close(tr.changed)
	tr.changed = make(chan struct{})
}

// await returns when cond holds for the tracked plans, with the time it was first seen to
// hold. On ctx's end, the error carries describe's account of the plans at that moment.
func (tr *planTracker) await(ctx context.Context, cond func(map[instanceRef]v1alpha1.PlanSummary) bool, describe func(map[instanceRef]v1alpha1.PlanSummary) string) (time.Time, error) {
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

// completed counts the plans named plan that are COMPLETE.
func completed(plans map[instanceRef]v1alpha1.PlanSummary, plan string) int {
	n := 0
	for _, p := range plans {
		if p.Name == plan && p.Status == v1alpha1.StatusComplete {
			n++
		}
	}
	return n
}

// describePlans summarises plans by name and status, e.g. "1000 instances: deploy COMPLETE 998, deploy IN_PROGRESS 2".
func describePlans(plans map[instanceRef]v1alpha1.PlanSummary) string {
	counts := map[string]int{}
	for _, p := range plans {
		key := "no plan"
		if p.Name != "" {
			key = p.Name + " " + string(p.Status)
		}
		counts[key]++
	}
	return fmt.Sprintf("%d instances: %v", len(plans), counts)
}
