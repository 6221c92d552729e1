package applier

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"

	"k8s.io/utils/ptr"

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

// scope says whether the cluster serves kinds and whether they are namespaced. The API
// server's discovery decides; a CRD the plan applies speaks only for what the cluster does not
// serve yet (its kinds are not served until the CRD is established). A CRD of a Delete task or
// of a Toggle that is off is never applied, so it speaks for nothing, and a CRD can never make
// a kind the cluster serves namespaced: a decoy CRD declaring ClusterRoleBinding namespaced
// must not slip one past allowClusterScoped: false.
type scope struct {
	mapper meta.RESTMapper
	// planCRDs are kinds defined by CRDs the plan applies: group/kind → namespaced.
	planCRDs map[schema.GroupKind]bool
	// planCRDVersions are group/versions those CRDs serve.
	planCRDVersions map[schema.GroupVersionKind]bool
	// kinds caches discovery by kind (nil: the cluster serves no version of it), so a plan of
	// many objects of a kind not served yet asks the API server once.
	kinds map[schema.GroupKind]*meta.RESTMapping
}

// newScope returns the scope of a plan that applies objs.
func newScope(mapper meta.RESTMapper, objs []*unstructured.Unstructured) *scope {
	s := &scope{mapper: mapper, planCRDs: map[schema.GroupKind]bool{}, planCRDVersions: map[schema.GroupVersionKind]bool{}, kinds: map[schema.GroupKind]*meta.RESTMapping{}}
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

// served reports whether the cluster, or a CRD the plan applies, serves a group/version/kind.
// A plan's CRD may add a version to a kind the cluster serves: that decides which version an
// object is applied at, never its scope.
func (s *scope) served(gvk schema.GroupVersionKind) bool {
	if s.planCRDVersions[gvk] {
		return true
	}
	_, err := s.mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
	return err == nil
}

// clusterKind returns how the cluster serves a kind at its preferred version, nil when it
// serves no version of it.
func (s *scope) clusterKind(gk schema.GroupKind) (*meta.RESTMapping, error) {
	if m, ok := s.kinds[gk]; ok {
		return m, nil
	}
	m, err := s.mapper.RESTMapping(gk)
	if meta.IsNoMatchError(err) {
		m, err = nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("discover %s: %w", gk, err)
	}
	s.kinds[gk] = m
	return m, nil
}

// servesKind reports whether the cluster serves any version of a kind, or a CRD the plan
// applies defines it.
func (s *scope) servesKind(gk schema.GroupKind) (bool, error) {
	m, err := s.clusterKind(gk)
	if err != nil {
		return false, err
	}
	_, planned := s.planCRDs[gk]
	return m != nil || planned, nil
}

// namespaced reports whether a kind is namespaced: as discovery says, else as the plan's CRD
// that defines it says.
func (s *scope) namespaced(gvk schema.GroupVersionKind) (bool, error) {
	m, err := s.clusterKind(gvk.GroupKind())
	if err != nil {
		return false, err
	}
	if m != nil {
		return m.Scope.Name() == meta.RESTScopeNameNamespace, nil
	}
	if ns, ok := s.planCRDs[gvk.GroupKind()]; ok {
		return ns, nil
	}
	return false, fmt.Errorf("the cluster does not serve %s %s", gvk.GroupVersion(), gvk.Kind)
}

// notServedError is an object of a kind the cluster serves at no version, and no CRD of the
// plan defines: no such object can exist.
type notServedError struct {
	template string
	object   *unstructured.Unstructured
}

func (e *notServedError) Error() string {
	gvk := e.object.GroupVersionKind()
	return fmt.Sprintf("%s: %s/%s: the cluster does not serve %s %s, nor any other version of that kind: is the CustomResourceDefinition or API that defines it installed?",
		e.template, gvk.Kind, e.object.GetName(), gvk.GroupVersion(), gvk.Kind)
}

// prepareOptions say how rendered objects are made ready for the cluster.
type prepareOptions struct {
	allowClusterScoped bool
	// strictNamespaces refuses a namespaced object that names another namespace than the
	// instance's (Tenant.StrictNamespaces).
	strictNamespaces bool
	// dropUnserved: an object the plan applies of a kind the cluster does not serve is left
	// out, not an error (the objects pruning keeps: such an object cannot exist).
	dropUnserved bool
}

// prepare upgrades retired API versions, forces namespaced objects into the instance's
// namespace with a controller reference to the Instance, and labels everything as KUDO does.
// It returns a warning per upgraded object, naming the template it came from. deleting says
// the plan deletes obj: any version the cluster serves of its kind will do, and an object of a
// kind the cluster does not serve is a *notServedError, which means there is nothing to delete.
func prepare(obj *unstructured.Unstructured, template string, inst *v1alpha1.Instance, pkg *manifests.Package, sc *scope, opts prepareOptions, deleting bool) ([]string, error) {
	var warnings []string
	up, err := manifests.UpgradeAPIVersion(obj, sc.served)
	if err != nil {
		gk := obj.GroupVersionKind().GroupKind()
		served, derr := sc.servesKind(gk)
		switch {
		case derr != nil:
			return nil, fmt.Errorf("%s: %s/%s: %w", template, gk.Kind, obj.GetName(), derr)
		case !served:
			return nil, &notServedError{template: template, object: obj}
		case !deleting:
			return nil, fmt.Errorf("%s: %w", template, err)
		}
		// Deleting needs no schema: the kind's preferred version finds the object.
		m, _ := sc.clusterKind(gk)
		if m != nil {
			obj.SetAPIVersion(m.GroupVersionKind.GroupVersion().String())
		}
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
		if ns := obj.GetNamespace(); opts.strictNamespaces && ns != "" && ns != inst.Namespace {
			return nil, fmt.Errorf("%s: %s/%s names namespace %s: the repository has a lane, and an instance's objects go in its own namespace %s (docs/security.md)", template, gvk.Kind, obj.GetName(), ns, inst.Namespace)
		}
		obj.SetNamespace(inst.Namespace)
		obj.SetOwnerReferences([]metav1.OwnerReference{{
			APIVersion: v1alpha1.GroupVersion.String(),
			Kind:       "Instance",
			Name:       inst.Name,
			UID:        inst.UID,
			Controller: ptr.To(true),
		}})
	} else {
		if !opts.allowClusterScoped {
			return nil, fmt.Errorf("%s: %s/%s is cluster-scoped and the daemon does not allow cluster-scoped objects for this instance's repository (allowClusterScoped: false)", template, gvk.Kind, obj.GetName())
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

// describeObjects lists objects as Kind/namespace/name.
func describeObjects(objs []*unstructured.Unstructured) string {
	names := make([]string, 0, len(objs))
	for _, o := range objs {
		names = append(names, objectRef(o))
	}
	return strings.Join(names, ", ")
}
