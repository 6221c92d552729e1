package applier

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/status"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// alwaysHealthy are kinds with nothing to wait for: kudod does not even read them back.
var alwaysHealthy = map[schema.GroupKind]bool{
	{Kind: "ConfigMap"}:      true,
	{Kind: "Secret"}:         true,
	{Kind: "ServiceAccount"}: true,
	{Kind: "Endpoints"}:      true,
	{Kind: "LimitRange"}:     true,
	// KUDO counts PersistentVolumeClaims healthy at once: a claim of a WaitForFirstConsumer
	// class only binds when a pod uses it, which may be in a later step.
	{Kind: "PersistentVolumeClaim"}:                                  true,
	{Group: "rbac.authorization.k8s.io", Kind: "Role"}:               true,
	{Group: "rbac.authorization.k8s.io", Kind: "RoleBinding"}:        true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRole"}:        true,
	{Group: "rbac.authorization.k8s.io", Kind: "ClusterRoleBinding"}: true,
	{Group: "networking.k8s.io", Kind: "NetworkPolicy"}:              true,
	{Group: "scheduling.k8s.io", Kind: "PriorityClass"}:              true,
	{Group: "storage.k8s.io", Kind: "StorageClass"}:                  true,
	{Group: "policy", Kind: "PodDisruptionBudget"}:                   true,
}

func needsHealthCheck(o *unstructured.Unstructured) bool {
	gk := o.GroupVersionKind().GroupKind()
	if gk == (schema.GroupKind{Kind: "Service"}) {
		t, _, _ := unstructured.NestedString(o.Object, "spec", "type")
		return t == "LoadBalancer"
	}
	return !alwaysHealthy[gk]
}

// waitHealthy waits until every object is healthy: kstatus's Current, with KUDO's rules on
// top (a failed Job fails the plan). A wait ends at once when ctx ends.
func (e *Engine) waitHealthy(ctx context.Context, objs []*unstructured.Unstructured) error {
	var pending []*unstructured.Unstructured
	for _, o := range objs {
		if needsHealthCheck(o) {
			pending = append(pending, o)
		}
	}
	if len(pending) == 0 {
		return nil
	}
	return e.poll(ctx, func(ctx context.Context) (bool, string, error) {
		var still []*unstructured.Unstructured
		var why []string
		for _, o := range pending {
			live := &unstructured.Unstructured{}
			live.SetGroupVersionKind(o.GroupVersionKind())
			if err := e.client.Get(ctx, client.ObjectKeyFromObject(o), live); err != nil {
				if apierrors.IsNotFound(err) {
					still = append(still, o)
					why = append(why, objectRef(o)+": not found")
					continue
				}
				return false, "", classify(err)
			}
			res, err := status.Compute(live)
			if err != nil {
				return false, "", fatal(fmt.Errorf("%s: cannot compute its status: %w", objectRef(o), err))
			}
			if res.Status == status.CurrentStatus {
				continue
			}
			if res.Status == status.FailedStatus && o.GetKind() == "Job" {
				return false, "", fatal(fmt.Errorf("%s failed: %s", objectRef(o), res.Message))
			}
			still = append(still, o)
			msg := fmt.Sprintf("%s: %s", objectRef(o), res.Status)
			if res.Message != "" {
				msg += " (" + res.Message + ")"
			}
			why = append(why, msg)
		}
		pending = still
		if len(pending) == 0 {
			return true, "", nil
		}
		sort.Strings(why)
		return false, strings.Join(why, "; "), nil
	})
}

// poll calls check until it is done, with pauses growing from 100ms to HealthPollMax. When ctx
// ends it returns an error naming what it was waiting for.
func (e *Engine) poll(ctx context.Context, check func(context.Context) (done bool, waitingFor string, err error)) error {
	delay := 100 * time.Millisecond
	waiting := ""
	for {
		done, why, err := check(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			return err
		}
		if done {
			return nil
		}
		waiting = why
		select {
		case <-ctx.Done():
			if errors.Is(context.Cause(ctx), errStepTimeout) {
				return fmt.Errorf("waiting for %s", waiting)
			}
			return context.Cause(ctx)
		case <-time.After(delay):
		}
		delay = min(delay*2, e.opts.HealthPollMax)
	}
}
