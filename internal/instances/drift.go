package instances

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// defaultDriftInterval applies when neither the repository nor the instance sets one
// (docs/configuration.md, repositories[]).
const defaultDriftInterval = 10 * time.Minute

// reconcileDrift compares, every drift interval, an idle instance's objects with what its
// completed plans applied (server-side dry-run) and re-applies what drifted — kudod's own fields
// only, by server-side apply — or, with spec.driftCorrection false, only reports it (event,
// metric, condition Drifted). No plan runs for drift (KUDO #217; docs/design.md, Drift). It
// returns when to look again.
func (r *Controller) reconcileDrift(ctx context.Context, inst *v1alpha1.Instance) (time.Duration, error) {
	if inst.Spec.Suspend || inst.Status.Applied == nil || len(inst.Status.Inventory) == 0 {
		return 0, nil
	}
	interval := r.driftIntervals[inst.Spec.Source.Repository]
	if inst.Spec.DriftInterval != nil {
		interval = inst.Spec.DriftInterval.Duration
	}
	if interval <= 0 {
		interval = defaultDriftInterval
	}
	key := client.ObjectKeyFromObject(inst)
	now := r.now()
	r.mu.Lock()
	last, seen := r.driftChecked[key]
	if !seen {
		// The clock starts when the daemon first sees the instance, spread over one more
		// interval: a restart does not compare every instance at once.
		last = now.Add(driftSpread(key, interval))
		r.driftChecked[key] = last
	}
	r.mu.Unlock()
	if wait := last.Add(interval).Sub(now); wait > 0 {
		return wait, nil
	}
	r.mu.Lock()
	r.driftChecked[key] = now
	r.mu.Unlock()

	eng, err := r.engineFor(inst)
	if err != nil {
		return 0, nil // outside its lane: nothing of it runs
	}
	// Nothing was written to the objects since the last clean check: no render, no dry-run.
	// The objects are read with the plan's rights (docs/security.md).
	reader := r.reader
	if eng.User() != "" {
		reader = eng.Reader()
	}
	fp, fpErr := liveFingerprint(ctx, reader, inst)
	if fpErr == nil && r.drift.unchanged(key, fp) {
		return interval, nil
	}
	r.drift.forget(key)
	pkg, err := r.store.InstancePackage(ctx, inst)
	if err != nil {
		return interval, fmt.Errorf("drift check of %s: %w", key, err)
	}
	values, err := r.params.Resolve(ctx, inst, pkg)
	if err != nil {
		return interval, fmt.Errorf("drift check of %s: %w", key, r.masker.Error(err))
	}
	desired, err := eng.Desired(ctx, inst, pkg, values.Params, r.store.Finder(inst.Spec.Source.Repository, inst.Spec.Source.Revision))
	if err != nil {
		return interval, fmt.Errorf("drift check of %s: %w", key, r.masker.Error(err))
	}
	drifted, err := eng.Drift(ctx, desired)
	if err != nil {
		return interval, fmt.Errorf("drift check of %s: %w", key, err)
	}
	correct := inst.Spec.DriftCorrection == nil || *inst.Spec.DriftCorrection
	if len(drifted) == 0 {
		if fpErr == nil {
			r.drift.remember(key, fp)
		}
		if c := apimeta.FindStatusCondition(inst.Status.Conditions, v1alpha1.ConditionDrifted); c != nil && c.Status == metav1.ConditionTrue {
			return interval, r.patchStatus(ctx, inst, func(s *v1alpha1.InstanceStatus) {
				s.SetCondition(metav1.Condition{Type: v1alpha1.ConditionDrifted, Status: metav1.ConditionFalse, Reason: "NoDrift", Message: "live objects match what the plans applied", ObservedGeneration: inst.Generation})
			})
		}
		return interval, nil
	}
	names := make([]string, 0, len(drifted))
	objs := make([]*unstructured.Unstructured, 0, len(drifted))
	for _, d := range drifted {
		names = append(names, d.String())
		objs = append(objs, d.Object)
	}
	list := strings.Join(names, ", ")
	mode := "reported"
	if correct {
		mode = "corrected"
		if err := eng.ApplyObjects(ctx, objs); err != nil {
			r.recorder.Eventf(inst, nil, corev1.EventTypeWarning, "DriftCorrectionFailed", "CorrectDrift", "re-applying drifted objects failed: %v", err)
			return interval, fmt.Errorf("correct drift of %s: %w", key, err)
		}
		r.recorder.Eventf(inst, nil, corev1.EventTypeNormal, "DriftCorrected", "CorrectDrift", "re-applied what drifted: %s", list)
	} else {
		r.recorder.Eventf(inst, nil, corev1.EventTypeWarning, "DriftDetected", "CorrectDrift", "drifted (driftCorrection is false, left as it is): %s", list)
	}
	r.metrics.Drifted(inst.Namespace, inst.Name, mode, len(drifted))
	r.log.Info("drift", "instance", key.String(), "mode", mode, "objects", list)
	status, reason := metav1.ConditionTrue, "Drifted"
	if correct {
		status, reason = metav1.ConditionFalse, "DriftCorrected"
	}
	return interval, r.patchStatus(ctx, inst, func(s *v1alpha1.InstanceStatus) {
		s.SetCondition(metav1.Condition{Type: v1alpha1.ConditionDrifted, Status: status, Reason: reason, Message: list, ObservedGeneration: inst.Generation})
	})
}
