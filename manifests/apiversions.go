package manifests

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Served reports whether the cluster serves a kind at a group and version (from discovery).
type Served func(gvk schema.GroupVersionKind) bool

// APIUpgrade records an object moved to a newer API version.
type APIUpgrade struct {
	Object string // Kind/name
	From   string
	To     string
	// Notes are changes beyond the version the new one requires.
	Notes []string
}

func (u APIUpgrade) String() string {
	s := fmt.Sprintf("%s upgraded from %s to %s: the cluster no longer serves %s", u.Object, u.From, u.To, u.From)
	for _, n := range u.Notes {
		s += "; " + n
	}
	return s
}

// AnnotationAPIApproved is the annotation apiextensions.k8s.io/v1 requires on a CRD in a
// protected group (*.k8s.io, *.kubernetes.io): the URL of its API review, or a value beginning
// with "unapproved" (kubernetes/enhancements#1111). v1beta1 never required it.
const AnnotationAPIApproved = "api-approved.kubernetes.io"

// unapprovedValue is what kudod sets when it upgrades a v1beta1 CRD of a protected group, as
// upstream operators did when they moved their CRDs to v1.
const unapprovedValue = "unapproved, set by kudod when it upgraded this CRD from apiextensions.k8s.io/v1beta1"

// IsProtectedGroup reports whether a CRD in group needs AnnotationAPIApproved: the groups of
// the Kubernetes project, k8s.io and kubernetes.io and their subdomains.
func IsProtectedGroup(group string) bool {
	return group == "k8s.io" || strings.HasSuffix(group, ".k8s.io") ||
		group == "kubernetes.io" || strings.HasSuffix(group, ".kubernetes.io")
}

// successors maps a retired group/version/kind to its GA successor when the schemas are
// compatible (docs/design.md, Running a plan). Kinds whose schema changed (extensions/v1beta1
// Ingress) are absent: rewriting them silently would change meaning.
var successors = map[schema.GroupVersionKind]schema.GroupVersion{
	{Group: "policy", Version: "v1beta1", Kind: "PodDisruptionBudget"}:                                  {Group: "policy", Version: "v1"},
	{Group: "rbac.authorization.k8s.io", Version: "v1beta1", Kind: "Role"}:                              {Group: "rbac.authorization.k8s.io", Version: "v1"},
	{Group: "rbac.authorization.k8s.io", Version: "v1beta1", Kind: "ClusterRole"}:                       {Group: "rbac.authorization.k8s.io", Version: "v1"},
	{Group: "rbac.authorization.k8s.io", Version: "v1beta1", Kind: "RoleBinding"}:                       {Group: "rbac.authorization.k8s.io", Version: "v1"},
	{Group: "rbac.authorization.k8s.io", Version: "v1beta1", Kind: "ClusterRoleBinding"}:                {Group: "rbac.authorization.k8s.io", Version: "v1"},
	{Group: "apps", Version: "v1beta1", Kind: "Deployment"}:                                             {Group: "apps", Version: "v1"},
	{Group: "apps", Version: "v1beta1", Kind: "StatefulSet"}:                                            {Group: "apps", Version: "v1"},
	{Group: "apps", Version: "v1beta2", Kind: "Deployment"}:                                             {Group: "apps", Version: "v1"},
	{Group: "apps", Version: "v1beta2", Kind: "StatefulSet"}:                                            {Group: "apps", Version: "v1"},
	{Group: "apps", Version: "v1beta2", Kind: "DaemonSet"}:                                              {Group: "apps", Version: "v1"},
	{Group: "apps", Version: "v1beta2", Kind: "ReplicaSet"}:                                             {Group: "apps", Version: "v1"},
	{Group: "extensions", Version: "v1beta1", Kind: "Deployment"}:                                       {Group: "apps", Version: "v1"},
	{Group: "extensions", Version: "v1beta1", Kind: "DaemonSet"}:                                        {Group: "apps", Version: "v1"},
	{Group: "extensions", Version: "v1beta1", Kind: "ReplicaSet"}:                                       {Group: "apps", Version: "v1"},
	{Group: "extensions", Version: "v1beta1", Kind: "NetworkPolicy"}:                                    {Group: "networking.k8s.io", Version: "v1"},
	{Group: "batch", Version: "v1beta1", Kind: "CronJob"}:                                               {Group: "batch", Version: "v1"},
	{Group: "scheduling.k8s.io", Version: "v1beta1", Kind: "PriorityClass"}:                             {Group: "scheduling.k8s.io", Version: "v1"},
	{Group: "storage.k8s.io", Version: "v1beta1", Kind: "StorageClass"}:                                 {Group: "storage.k8s.io", Version: "v1"},
	{Group: "apiextensions.k8s.io", Version: "v1beta1", Kind: "CustomResourceDefinition"}:               {Group: "apiextensions.k8s.io", Version: "v1"},
	{Group: "admissionregistration.k8s.io", Version: "v1beta1", Kind: "ValidatingWebhookConfiguration"}: {Group: "admissionregistration.k8s.io", Version: "v1"},
	{Group: "admissionregistration.k8s.io", Version: "v1beta1", Kind: "MutatingWebhookConfiguration"}:   {Group: "admissionregistration.k8s.io", Version: "v1"},
}

// UpgradeAPIVersion moves obj to the GA successor of its API version when the cluster does
// not serve that version: a pure function of the object and what the cluster serves. It returns
// the upgrade made (nil when none was needed) or an error naming the object when the cluster
// serves neither the version nor a compatible successor.
func UpgradeAPIVersion(obj *unstructured.Unstructured, served Served) (*APIUpgrade, error) {
	gvk := obj.GroupVersionKind()
	if served(gvk) {
		return nil, nil
	}
	name := gvk.Kind + "/" + obj.GetName()
	next, ok := successors[gvk]
	if !ok {
		return nil, fmt.Errorf("%s: the cluster does not serve %s %s and kudod knows no compatible successor", name, gvk.GroupVersion(), gvk.Kind)
	}
	to := next.WithKind(gvk.Kind)
	if !served(to) {
		return nil, fmt.Errorf("%s: the cluster serves neither %s nor %s", name, gvk.GroupVersion(), next)
	}
	up := &APIUpgrade{Object: name, From: obj.GetAPIVersion(), To: next.String()}
	switch {
	case gvk.Kind == "CustomResourceDefinition":
		if err := upgradeCRD(obj); err != nil {
			return nil, fmt.Errorf("%s: upgrade to %s: %w", name, next, err)
		}
		if note := approveCRD(obj); note != "" {
			up.Notes = append(up.Notes, note)
		}
	case next.Group == "apps":
		defaultSelector(obj)
	}
	obj.SetAPIVersion(next.String())
	return up, nil
}

// approveCRD sets AnnotationAPIApproved on a CRD of a protected group that lacks it, without
// which a v1 API server refuses it ("metadata.annotations[api-approved.kubernetes.io]:
// Required value"). It returns what it did, or "".
func approveCRD(obj *unstructured.Unstructured) string {
	group, _, _ := unstructured.NestedString(obj.Object, "spec", "group")
	if !IsProtectedGroup(group) {
		return ""
	}
	annotations := obj.GetAnnotations()
	if _, ok := annotations[AnnotationAPIApproved]; ok {
		return ""
	}
	if annotations == nil {
		annotations = map[string]string{}
	}
	annotations[AnnotationAPIApproved] = unapprovedValue
	obj.SetAnnotations(annotations)
	return fmt.Sprintf("annotation %s: %q added, which v1 requires in the protected group %s", AnnotationAPIApproved, unapprovedValue, group)
}

// defaultSelector sets spec.selector from the pod template's labels when it is missing:
// apps/v1 requires it where the beta versions defaulted it.
func defaultSelector(obj *unstructured.Unstructured) {
	if _, found, _ := unstructured.NestedFieldNoCopy(obj.Object, "spec", "selector"); found {
		return
	}
	labels, found, _ := unstructured.NestedStringMap(obj.Object, "spec", "template", "metadata", "labels")
	if !found || len(labels) == 0 {
		return
	}
	ml := make(map[string]any, len(labels))
	for k, v := range labels {
		ml[k] = v
	}
	_ = unstructured.SetNestedField(obj.Object, map[string]any{"matchLabels": ml}, "spec", "selector")
}

// upgradeCRD rewrites an apiextensions.k8s.io/v1beta1 CRD as v1: the top-level version,
// validation schema, subresources and printer columns move under each version, and a CRD
// without a schema keeps accepting any field.
func upgradeCRD(obj *unstructured.Unstructured) error {
	spec, ok := obj.Object["spec"].(map[string]any)
	if !ok {
		return fmt.Errorf("spec is missing")
	}
	var versions []any
	if vs, ok := spec["versions"].([]any); ok && len(vs) > 0 {
		versions = vs
	} else if v, ok := spec["version"].(string); ok && v != "" {
		versions = []any{map[string]any{"name": v, "served": true, "storage": true}}
	} else {
		return fmt.Errorf("neither spec.version nor spec.versions is set")
	}
	validation, _ := spec["validation"].(map[string]any)
	subresources, hasSub := spec["subresources"]
	columns, hasCols := spec["additionalPrinterColumns"].([]any)
	preserve, _ := spec["preserveUnknownFields"].(bool)
	for i, v := range versions {
		vm, ok := v.(map[string]any)
		if !ok {
			return fmt.Errorf("spec.versions[%d] is not an object", i)
		}
		if _, ok := vm["schema"]; !ok {
			if validation != nil {
				vm["schema"] = validation
			} else {
				vm["schema"] = map[string]any{"openAPIV3Schema": map[string]any{"type": "object", "x-kubernetes-preserve-unknown-fields": true}}
			}
		} else if s, ok := vm["schema"].(map[string]any); ok && preserve {
			if oa, ok := s["openAPIV3Schema"].(map[string]any); ok {
				oa["x-kubernetes-preserve-unknown-fields"] = true
			}
		}
		if _, ok := vm["subresources"]; !ok && hasSub {
			vm["subresources"] = subresources
		}
		if _, ok := vm["additionalPrinterColumns"]; !ok && hasCols {
			vm["additionalPrinterColumns"] = v1PrinterColumns(columns)
		} else if cols, ok := vm["additionalPrinterColumns"].([]any); ok {
			vm["additionalPrinterColumns"] = v1PrinterColumns(cols)
		}
		if _, ok := vm["served"]; !ok {
			vm["served"] = true
		}
		if _, ok := vm["storage"]; !ok {
			vm["storage"] = i == 0
		}
		versions[i] = vm
	}
	spec["versions"] = versions
	for _, k := range []string{"version", "validation", "subresources", "additionalPrinterColumns", "preserveUnknownFields"} {
		delete(spec, k)
	}
	if conv, ok := spec["conversion"].(map[string]any); ok {
		if cc, ok := conv["webhookClientConfig"]; ok {
			review := conv["conversionReviewVersions"]
			if review == nil {
				review = []any{"v1beta1"}
			}
			conv["webhook"] = map[string]any{"clientConfig": cc, "conversionReviewVersions": review}
			delete(conv, "webhookClientConfig")
			delete(conv, "conversionReviewVersions")
		}
	}
	if _, ok := spec["scope"]; !ok {
		spec["scope"] = "Namespaced"
	}
	return nil
}

// v1PrinterColumns renames v1beta1's JSONPath to v1's jsonPath.
func v1PrinterColumns(cols []any) []any {
	out := make([]any, 0, len(cols))
	for _, c := range cols {
		cm, ok := c.(map[string]any)
		if !ok {
			out = append(out, c)
			continue
		}
		if jp, ok := cm["JSONPath"]; ok {
			cm["jsonPath"] = jp
			delete(cm, "JSONPath")
		}
		out = append(out, cm)
	}
	return out
}
