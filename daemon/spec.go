package daemon

import (
	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
)

// desiredInstance is the Instance object kudod applies for an instance file at a revision: its
// spec is the desired state, owned by the daemon's field manager.
func desiredInstance(repository, revision string, in *manifests.Instance, plan *v1alpha1.PlanRequest) *v1alpha1.Instance {
	p := in.Package
	inst := &v1alpha1.Instance{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Instance"},
		ObjectMeta: metav1.ObjectMeta{
			Name:      in.Name,
			Namespace: in.Namespace,
			Labels: map[string]string{
				v1alpha1.LabelRepository: repository,
				v1alpha1.LabelManagedBy:  "kudod",
				"kudo.dev/operator":      p.Name,
			},
			Finalizers: []string{v1alpha1.FinalizerCleanup},
		},
		Spec: v1alpha1.InstanceSpec{
			Operator:        v1alpha1.OperatorRef{Name: p.Name, Version: p.OperatorVersion, AppVersion: p.AppVersion},
			PackageDigest:   p.Digest,
			Parameters:      in.ParameterStrings(),
			Source:          v1alpha1.SourceRef{Repository: repository, Path: in.File, PackagePath: p.Dir, Revision: revision},
			Plan:            plan,
			Schedules:       in.Schedules,
			Suspend:         in.Suspend,
			DriftCorrection: in.DriftCorrection,
		},
	}
	if len(inst.Spec.Parameters) == 0 {
		inst.Spec.Parameters = nil
	}
	if in.StepTimeout != nil {
		inst.Spec.StepTimeout = &metav1.Duration{Duration: *in.StepTimeout}
	}
	if in.DriftInterval != nil {
		inst.Spec.DriftInterval = &metav1.Duration{Duration: *in.DriftInterval}
	}
	return inst
}

// sameSpec reports whether applying want over have would change have's spec, ignoring the
// plan request and the revision (a commit that changes nothing about an instance neither
// rewrites it nor re-runs anything).
func sameSpec(have, want *v1alpha1.Instance) bool {
	a, b := have.Spec.DeepCopy(), want.Spec.DeepCopy()
	a.Plan, b.Plan = nil, nil
	a.Source.Revision, b.Source.Revision = "", ""
	if len(a.Parameters) == 0 {
		a.Parameters = nil
	}
	if len(b.Parameters) == 0 {
		b.Parameters = nil
	}
	return equality.Semantic.DeepEqual(a, b) && have.Labels[v1alpha1.LabelRepository] == want.Labels[v1alpha1.LabelRepository]
}
