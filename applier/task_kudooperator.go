package applier

import (
	"context"
	"fmt"

	"gopkg.in/yaml.v3"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/uuid"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
	"github.com/kudod-dev/kudod/planner"
)

// kudoOperatorTask is a KudoOperator task (KUDO's KEP-29): it writes a child Instance, from a
// package of the parent's repository, with the parameters its parameterFile renders; the
// child's own controller runs the child's plan, and the task waits until that plan completed.
type kudoOperatorTask struct {
	// name of the child instance.
	name string
	// pkg is the child's package; nil in an offline render.
	pkg        *manifests.Package
	parameters map[string]string
}

// renderKudoOperator finds the child's package and renders the task's parameterFile into the
// child's parameters, checked against that package. An offline render only names the child.
func renderKudoOperator(ctx context.Context, r *planRender, _ manifests.RenderInput, t *manifests.Task) (task, error) {
	name := t.Spec.InstanceName
	if name == "" {
		name = r.instance.Name + "-" + t.Spec.Package
	}
	k := &kudoOperatorTask{name: name, parameters: map[string]string{}}
	if r.offline {
		return k, nil
	}
	if r.children == nil {
		return nil, fmt.Errorf("KudoOperator tasks need the packages of the instance's repository")
	}
	pkg, err := r.children.FindPackage(ctx, t.Spec.Package, t.Spec.OperatorVersion, t.Spec.AppVersion)
	if err != nil {
		return nil, err
	}
	k.pkg = pkg
	if t.Spec.ParameterFile == "" {
		return k, nil
	}
	path := r.pkg.TemplatePath(t.Spec.ParameterFile)
	text, err := r.pkg.RenderTextContext(ctx, t.Spec.ParameterFile, manifests.RenderInput{
		Name: r.instance.Name, Namespace: r.instance.Namespace, Params: r.params,
	})
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal([]byte(text), &doc); err != nil {
		return nil, fmt.Errorf("%s: rendered parameter file is not YAML: %w", path, err)
	}
	if len(doc.Content) == 0 {
		return k, nil
	}
	if err := manifests.CheckYAML(path, &doc); err != nil {
		return nil, fmt.Errorf("rendered parameter file: %w", err)
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: a parameter file must be a YAML map of parameter names to values", path)
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		v, ok, err := manifests.ValueFromNode(m.Content[i+1])
		if err != nil || !ok {
			return nil, fmt.Errorf("%s: parameter %s: null or invalid value", path, m.Content[i].Value)
		}
		par := pkg.Parameter(m.Content[i].Value)
		if par == nil {
			return nil, fmt.Errorf("%s: %s has no parameter %s", path, pkg.ID(), m.Content[i].Value)
		}
		if err := par.ValidateValue(v); err != nil {
			return nil, fmt.Errorf("%s: parameter %s of %s: %w", path, par.Name, pkg.ID(), err)
		}
		k.parameters[m.Content[i].Value] = v.Text
	}
	return k, nil
}

func (k *kudoOperatorTask) batch() (apply, remove []*unstructured.Unstructured) { return nil, nil }

func (k *kudoOperatorTask) write(_, writeCtx context.Context, x *stepExecution) ([]*unstructured.Unstructured, error) {
	child, err := x.engine.ensureChild(writeCtx, x.run, k)
	if err != nil {
		return nil, err
	}
	return []*unstructured.Unstructured{child}, nil
}

func (k *kudoOperatorTask) wait(ctx context.Context, x *stepExecution) error {
	return x.engine.waitChild(ctx, x.run, k)
}

func (k *kudoOperatorTask) inventory(namespace string) []*unstructured.Unstructured {
	o := &unstructured.Unstructured{}
	o.SetAPIVersion(v1alpha1.GroupVersion.String())
	o.SetKind("Instance")
	o.SetNamespace(namespace)
	o.SetName(k.name)
	return []*unstructured.Unstructured{o}
}

func (k *kudoOperatorTask) preview(pv *planPreview) {
	pv.add(ObjectChange{Object: "Instance/" + pv.namespace + "/" + k.name, Action: ChangeConfigured, Note: "a child instance (KudoOperator task): its own plan runs"})
}

// output is empty: the child's objects are the child's, rendered from its own package.
func (k *kudoOperatorTask) output() (string, []*objectSet) { return "", nil }

// ensureChild creates or updates the child Instance of a KudoOperator task (KEP-29): in the
// parent's namespace, owned by the parent, from a package of the same repository, with the
// plan the planner picks for the change. The child's own controller runs that plan.
func (e *Engine) ensureChild(ctx context.Context, run *Run, k *kudoOperatorTask) (*unstructured.Unstructured, error) {
	parent := run.Instance
	existing := &v1alpha1.Instance{}
	err := e.instances.Get(ctx, types.NamespacedName{Namespace: parent.Namespace, Name: k.name}, existing)
	if err != nil && !apierrors.IsNotFound(err) {
		return nil, classify(err)
	}
	var deployed *planner.DeployedChild
	if err == nil {
		if existing.Labels[v1alpha1.LabelParent] != parent.Name {
			return nil, fatal(fmt.Errorf("instance %s/%s exists and does not belong to %s", parent.Namespace, k.name, parent.Name))
		}
		deployed = &planner.DeployedChild{Digest: existing.Spec.PackageDigest, Parameters: existing.Spec.Parameters}
		// A package the repository no longer has is nil: the planner judges by the new one.
		if old, ferr := run.Children.FindPackage(ctx, existing.Spec.Operator.Name, existing.Spec.Operator.Version, existing.Spec.Operator.AppVersion); ferr == nil {
			deployed.Package = old
		}
	}
	d := planner.DecideChild(deployed, &planner.State{Namespace: parent.Namespace, Name: k.name, Package: k.pkg, Parameters: k.parameters})
	var request *v1alpha1.PlanRequest
	switch {
	case d.Action == planner.ActionRejected:
		return nil, fatal(fmt.Errorf("child instance %s: %s", k.name, d.Error))
	case d.Action == planner.ActionNone && deployed != nil:
		request = existing.Spec.Plan
	default:
		request = planRequest(d)
	}
	child := &v1alpha1.Instance{
		TypeMeta: metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Instance"},
		ObjectMeta: metav1.ObjectMeta{
			Name: k.name, Namespace: parent.Namespace,
			Labels: map[string]string{
				v1alpha1.LabelParent:     parent.Name,
				v1alpha1.LabelRepository: parent.Labels[v1alpha1.LabelRepository],
				v1alpha1.LabelManagedBy:  "kudod",
				LabelOperator:            k.pkg.Name,
			},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "Instance", Name: parent.Name, UID: parent.UID}},
			Finalizers:      []string{v1alpha1.FinalizerCleanup},
		},
		Spec: v1alpha1.InstanceSpec{
			Operator:      v1alpha1.OperatorRef{Name: k.pkg.Name, Version: k.pkg.OperatorVersion, AppVersion: k.pkg.AppVersion},
			PackageDigest: k.pkg.Digest,
			Parameters:    k.parameters,
			Source: v1alpha1.SourceRef{
				Repository: parent.Spec.Source.Repository, Path: parent.Spec.Source.Path,
				PackagePath: k.pkg.Dir, Revision: parent.Spec.Source.Revision,
			},
			Plan:        request,
			StepTimeout: parent.Spec.StepTimeout,
			// The child's plans run with the parent's rights (docs/security.md).
			ServiceAccountName: parent.Spec.ServiceAccountName,
		},
	}
	u, err := ApplyObject(child)
	if err != nil {
		return nil, fatal(err)
	}
	if err := ServerSideApply(ctx, e.instances, u); err != nil {
		return nil, classify(fmt.Errorf("apply child instance %s: %w", k.name, err))
	}
	return u, nil
}

// waitChild waits until the child's requested plan completed; its failure fails the parent's
// step (KUDO counted a failed child as done).
func (e *Engine) waitChild(ctx context.Context, run *Run, k *kudoOperatorTask) error {
	return e.poll(ctx, func(ctx context.Context) (bool, string, error) {
		child := &v1alpha1.Instance{}
		if err := e.instances.Get(ctx, types.NamespacedName{Namespace: run.Instance.Namespace, Name: k.name}, child); err != nil {
			return false, "", classify(err)
		}
		req := child.Spec.Plan
		if req == nil {
			return true, "", nil
		}
		last := child.Status.LastPlan
		if last == nil || last.UID != req.UID {
			return false, fmt.Sprintf("child instance %s to start plan %s", k.name, req.Name), nil
		}
		switch last.Status {
		case v1alpha1.StatusComplete:
			return true, "", nil
		case v1alpha1.StatusFatalError:
			return false, "", fatal(fmt.Errorf("child instance %s: plan %s %s: %s", k.name, last.Name, last.Status, last.Message))
		}
		return false, fmt.Sprintf("child instance %s: plan %s %s", k.name, last.Name, last.Status), nil
	})
}

func planRequest(d planner.Decision) *v1alpha1.PlanRequest {
	return &v1alpha1.PlanRequest{Name: d.Plan, UID: string(uuid.NewUUID()), Action: string(d.Action), Reasons: d.Reasons}
}
