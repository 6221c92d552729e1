// Package v1alpha1 holds the kudod.dev/v1alpha1 API: the Instance custom resource through
// which the daemon records, per instance, the desired state from git, the plan it runs and
// what it applied.
// +kubebuilder:object:generate=true
// +groupName=kudod.dev
package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// GroupVersion is the API group and version of kudod's resources.
var GroupVersion = schema.GroupVersion{Group: "kudod.dev", Version: "v1alpha1"}

// AddToScheme registers the kudod.dev/v1alpha1 types with a scheme.
func AddToScheme(s *runtime.Scheme) error {
	s.AddKnownTypes(GroupVersion, &Instance{}, &InstanceList{})
	metav1.AddToGroupVersion(s, GroupVersion)
	return nil
}
