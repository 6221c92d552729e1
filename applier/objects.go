// Package applier runs a plan against a cluster: it renders every template of the plan
// before the first write, then walks phases and steps (serial unless a strategy says
// parallel), server-side applies each step's objects with fluxcd/pkg/ssa after validating
// them by dry-run, waits for them to be healthy, records what it applied in an inventory and
// prunes what no plan renders any more.
package applier

import (
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/manifests"
)

// KUDO's labels, put on every object kudod applies so KUDO users' selectors keep working.
const (
	LabelHeritage = "heritage"
	LabelInstance = "kudo.dev/instance"
	LabelOperator = "kudo.dev/operator"
	HeritageKUDO  = "kudo"
	// AnnotationOperatorVersion goes on pod templates (as KUDO does) and top-level objects.
	AnnotationOperatorVersion = "kudo.dev/operator-version"
)

// workloadKinds have a pod template at spec.template (CronJob at spec.jobTemplate.spec.template).
var workloadKinds = map[schema.GroupKind]bool{
	{Group: "apps", Kind: "Deployment"}:  true,
	{Group: "apps", Kind: "StatefulSet"}: true,
	{Group: "apps", Kind: "DaemonSet"}:   true,
	{Group: "apps", Kind: "ReplicaSet"}:  true,
	{Group: "batch", Kind: "Job"}:        true,
	{Group: "batch", Kind: "CronJob"}:    true,
}

// scope says whether kinds are namespaced: from the cluster's discovery, or from a CRD the plan
// itself creates (its kinds are not served until the CRD is established).
type scope struct {
	mapper meta.RESTMapper
	// planCRDs are kinds defined by CRDs rendered in the same plan: group/kind → namespaced.
	planCRDs map[schema.GroupKind]bool
	// planCRDVersions are group/versions those CRDs serve.
	planCRDVersions map[schema.GroupVersionKind]bool
}

func newScope(mapper meta.RESTMapper, objs []*unstructured.Unstructured) *scope {
	s := &scope{mapper: mapper, planCRDs: map[schema.GroupKind]bool{}, planCRDVersions: map[schema.GroupVersionKind]bool{}}
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" || o.GroupVersionKind().Group != "apiextensions.k8s.io" {
			continue
		}
		group, _, _ := unstructured.NestedString(o.Object, "spec", "group")
		kind, _, _ := unstructured.NestedString(o.Object, "spec", "names", "kind")
		sc, _, _ := unstructured.NestedString(o.Object, "spec", "scope")
		gk := schema.GroupKind{Group: group, Kind: kind}
		s.planCRDs[gk] = sc != "Cluster"
		versions, _, _ := unstructured.NestedSlice(o.Object, "spec", "versions")
		for _, v := range versions {
			if vm, ok := v.(map[string]any); ok {
				if name, ok := vm["name"].(string); ok {
					s.planCRDVersions[gk.WithVersion(name)] = true
				}
			}
		}
		if v, ok, _ := unstructured.NestedString(o.Object, "spec", "version"); ok && v != "" {
			s.planCRDVersions[gk.WithVersion(v)] = true
		}
	}
	return s
}

// served reports whether the cluster (or a CRD of the plan) serves a group/version/kind.
func (s *scope) served(gvk schema.GroupVersionKind) bool {
	if s.planCRDVersions[gvk] {
		return true
	}
	_, err := s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	return err == nil
}

// namespaced reports whether a kind is namespaced.
func (s *scope) namespaced(gvk schema.GroupVersionKind) (bool, error) {
	if ns, ok := s.planCRDs[gvk.GroupKind()]; ok {
		return ns, nil
	}
	m, err := s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	if err != nil {
		return false, fmt.Errorf("the cluster does not serve %s %s: %w", gvk.GroupVersion(), gvk.Kind, err)
	}
	return m.Scope.Name() == meta.RESTScopeNameNamespace, nil
}

// prepareOptions say how rendered objects are made ready for the cluster.
type prepareOptions struct {
	allowClusterScoped bool
}

// prepare upgrades retired API versions, forces namespaced objects into the instance's
// namespace with a controller reference to the Instance, and labels everything as KUDO does.
// It returns a warning per upgraded object, naming the template it came from.
func prepare(obj *unstructured.Unstructured, template string, inst *v1alpha1.Instance, pkg *manifests.Package, sc *scope, opts prepareOptions) ([]string, error) {
	var warnings []string
	up, err := manifests.UpgradeAPIVersion(obj, sc.served)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", template, err)
	}
	if up != nil {
		warnings = append(warnings, fmt.Sprintf("%s: %s", template, up))
	}
	gvk := obj.GroupVersionKind()
	namespaced, err := sc.namespaced(gvk)
	if err != nil {
		return nil, fmt.Errorf("%s: %s/%s: %w", template, gvk.Kind, obj.GetName(), err)
	}
	if namespaced {
		obj.SetNamespace(inst.Namespace)
		obj.SetOwnerReferences([]metav1.OwnerReference{{
			APIVersion: v1alpha1.GroupVersion.String(),
			Kind:       "Instance",
			Name:       inst.Name,
			UID:        inst.UID,
			Controller: ptrTrue(),
		}})
	} else {
		if !opts.allowClusterScoped {
			return nil, fmt.Errorf("%s: %s/%s is cluster-scoped and the daemon does not allow cluster-scoped objects (cluster.allowClusterScoped: false)", template, gvk.Kind, obj.GetName())
		}
		obj.SetNamespace("")
	}
	labels := map[string]string{LabelHeritage: HeritageKUDO, LabelInstance: inst.Name, LabelOperator: pkg.Name}
	setLabels(obj, labels)
	if workloadKinds[gvk.GroupKind()] {
		path := []string{"spec", "template", "metadata"}
		if gvk.Kind == "CronJob" {
			path = []string{"spec", "jobTemplate", "spec", "template", "metadata"}
		}
		setNestedLabels(obj, labels, path...)
		setNestedAnnotation(obj, AnnotationOperatorVersion, pkg.OperatorVersion, path...)
	}
	return warnings, nil
}

func ptrTrue() *bool { t := true; return &t }

func setLabels(obj *unstructured.Unstructured, labels map[string]string) {
	l := obj.GetLabels()
	if l == nil {
		l = map[string]string{}
	}
	for k, v := range labels {
		l[k] = v
	}
	obj.SetLabels(l)
}

func setNestedLabels(obj *unstructured.Unstructured, labels map[string]string, path ...string) {
	l, _, _ := unstructured.NestedStringMap(obj.Object, append(path, "labels")...)
	if l == nil {
		l = map[string]string{}
	}
	for k, v := range labels {
		l[k] = v
	}
	_ = unstructured.SetNestedStringMap(obj.Object, l, append(path, "labels")...)
}

func setNestedAnnotation(obj *unstructured.Unstructured, key, value string, path ...string) {
	a, _, _ := unstructured.NestedStringMap(obj.Object, append(path, "annotations")...)
	if a == nil {
		a = map[string]string{}
	}
	a[key] = value
	_ = unstructured.SetNestedStringMap(obj.Object, a, append(path, "annotations")...)
}

// objectRef formats an object as Kind/namespace/name (Kind/name when cluster-scoped).
func objectRef(obj *unstructured.Unstructured) string {
	if obj.GetNamespace() == "" {
		return obj.GetKind() + "/" + obj.GetName()
	}
	return obj.GetKind() + "/" + obj.GetNamespace() + "/" + obj.GetName()
}
