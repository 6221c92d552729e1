package applier

import (
	"context"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/planner"
)

// ensureChild creates or updates the child Instance of a KudoOperator task (KEP-29): in the
// parent's namespace, owned by the parent, from a package of the same repository, with the
// plan the planner picks for the change. The child's own controller runs that plan.
func (e *Engine) ensureChild(ctx context.Context, run *Run, cs *childSpec) (*unstructured.Unstructured, error) {
	parent := run.Instance
	existing := &v1alpha1.Instance{}
	err := e.client.Get(ctx, types.NamespacedName{Namespace: parent.Namespace, Name: cs.name}, existing)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, classify(err)
	}
	var deployed *planner.DeployedChild
	if err == nil {
		if existing.Labels[v1alpha1.LabelParent] != parent.Name {
			return nil, fatal(fmt.Errorf("instance %s/%s exists and does not belong to %s", parent.Namespace, cs.name, parent.Name))
		}
		deployed = &planner.DeployedChild{Digest: existing.Spec.PackageDigest, Parameters: existing.Spec.Parameters}
		// A package the repository no longer has is nil: the planner judges by the new one.
		if old, ferr := run.Children.FindPackage(ctx, existing.Spec.Operator.Name, existing.Spec.Operator.Version, existing.Spec.Operator.AppVersion); ferr == nil {
			deployed.Package = old
		}
	}
	d := planner.DecideChild(deployed, &planner.State{Namespace: parent.Namespace, Name: cs.name, Package: cs.pkg, Parameters: cs.parameters})
	var request *v1alpha1.PlanRequest
	switch {
	case d.Action == planner.ActionRejected:
		return nil, fatal(fmt.Errorf("child instance %s: %s", cs.name, d.Error))
	case d.Action == planner.ActionNone && deployed != nil:
		request = existing.Spec.Plan
	default:
		request = planRequest(d)
	}
	child := &v1alpha1.Instance{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Instance"},
		ObjectMeta: metav1.ObjectMeta{
			Name: cs.name, Namespace: parent.Namespace,
			Labels: map[string]string{
				v1alpha1.LabelParent:     parent.Name,
				v1alpha1.LabelRepository: parent.Labels[v1alpha1.LabelRepository],
				v1alpha1.LabelManagedBy:  "kudod",
				LabelOperator:            cs.pkg.Name,
			},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Instance", Name: parent.Name, UID: parent.UID}},
			Finalizers:      []string{v1alpha1.FinalizerCleanup},
		},
		Spec: v1alpha1.InstanceSpec{
			Operator:      v1alpha1.OperatorRef{Name: cs.pkg.Name, Version: cs.pkg.OperatorVersion, AppVersion: cs.pkg.AppVersion},
			PackageDigest: cs.pkg.Digest,
			Parameters:    cs.parameters,
			Source: v1alpha1.SourceRef{
				Repository: parent.Spec.Source.Repository, Path: parent.Spec.Source.Path,
				PackagePath: cs.pkg.Dir, Revision: parent.Spec.Source.Revision,
			},
			Plan:        request,
			StepTimeout: parent.Spec.StepTimeout,
		},
	}
	u, err := ApplyObject(child)
	if err != nil {
		return nil, fatal(err)
	}
	if err := ServerSideApply(ctx, e.client, u); err != nil {
		return nil, classify(fmt.Errorf("apply child instance %s: %w", cs.name, err))
	}
	return u, nil
}

// waitChild waits until the child's requested plan completed; its failure fails the parent's
// step (KUDO counted a failed child as done).
func (e *Engine) waitChild(ctx context.Context, run *Run, cs *childSpec) error {
	return e.poll(ctx, func(ctx context.Context) (bool, string, error) {
		child := &v1alpha1.Instance{}
		if err := e.client.Get(ctx, types.NamespacedName{Namespace: run.Instance.Namespace, Name: cs.name}, child); err != nil {
			return false, "", classify(err)
		}
		req := child.Spec.Plan
		if req == nil {
			return true, "", nil
		}
		last := child.Status.LastPlan
		if last == nil || last.UID != req.UID {
			return false, fmt.Sprintf("child instance %s to start plan %s", cs.name, req.Name), nil
		}
		switch last.Status {
		case v1alpha1.StatusComplete:
			return true, "", nil
		case v1alpha1.StatusFatalError:
			return false, "", fatal(fmt.Errorf("child instance %s: plan %s %s: %s", cs.name, last.Name, last.Status, last.Message))
		}
		return false, fmt.Sprintf("child instance %s: plan %s %s", cs.name, last.Name, last.Status), nil
	})
}

func planRequest(d planner.Decision) *v1alpha1.PlanRequest {
	return &v1alpha1.PlanRequest{Name: d.Plan, UID: string(uuid.NewUUID()), Action: string(d.Action), Reasons: d.Reasons}
}
