// Package lanes says where the instances of a repository may go and whose rights their plans
// use (docs/security.md): a repository's lane is the list of namespaces (or patterns such as
// team-*) its instance files may target, whether its packages may write cluster-scoped
// objects, and the service account its plans impersonate when an instance names none. The
// poll, previews, `kudod plan` and the Instance controller all ask the same Policy, so an
// instance outside its lane is refused before anything is written.
package lanes

import (
	"fmt"
	"path"
	"strings"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/planner"
)

// Policy is what one repository's instances may do.
type Policy struct {
	// Repository names the repository in messages.
	Repository string
	// Namespaces is the lane: namespace names or path.Match patterns (team-*). Empty: any
	// namespace but the daemon's own.
	Namespaces []string
	// AllowClusterScoped lets the repository's packages write cluster-scoped objects.
	AllowClusterScoped bool
	// ServiceAccountName is impersonated by the plans of instances that name no service
	// account (repositories[].serviceAccountName).
	ServiceAccountName string
	// DefaultServiceAccount is the daemon's --default-service-account: impersonated when
	// neither the instance nor the repository names one.
	DefaultServiceAccount string
	// DaemonNamespace is the daemon's own namespace (its lease, its status ConfigMaps): an
	// instance may only go there when Namespaces lists it by name, not by a pattern.
	DaemonNamespace string
}

// Check returns why an instance may not target namespace, or nil.
func (p Policy) Check(namespace string) error {
	if namespace == "" {
		return nil
	}
	if p.DaemonNamespace != "" && namespace == p.DaemonNamespace {
		for _, n := range p.Namespaces {
			if n == namespace {
				return nil
			}
		}
		return fmt.Errorf("namespace %s is kudod's own namespace: repository %s may only deploy there if its namespaces list it by name", namespace, p.Repository)
	}
	if p.Allows(namespace) {
		return nil
	}
	return fmt.Errorf("namespace %s is outside repository %s's lane (namespaces: %s)", namespace, p.Repository, strings.Join(p.Namespaces, ", "))
}

// Allows reports whether namespace is in the lane (any namespace when the lane is open); the
// daemon's own namespace is Check's to refuse.
func (p Policy) Allows(namespace string) bool {
	if len(p.Namespaces) == 0 {
		return true
	}
	for _, pattern := range p.Namespaces {
		if ok, err := path.Match(pattern, namespace); err == nil && ok {
			return true
		}
	}
	return false
}

// Closed reports whether the lane restricts namespaces: a namespaced object a package renders
// into another namespace than its instance's is then refused instead of being moved into the
// instance's namespace as KUDO moves it (docs/security.md).
func (p Policy) Closed() bool { return len(p.Namespaces) > 0 }

// ServiceAccount returns the service account an instance's plans impersonate: its own
// spec.serviceAccountName, else the repository's, else the daemon's default; "" means the
// daemon's own identity.
func (p Policy) ServiceAccount(inst *v1alpha1.Instance) string {
	switch {
	case inst.Spec.ServiceAccountName != "":
		return inst.Spec.ServiceAccountName
	case p.ServiceAccountName != "":
		return p.ServiceAccountName
	}
	return p.DefaultServiceAccount
}

// Username is the user name Kubernetes gives a service account.
func Username(namespace, serviceAccount string) string {
	return "system:serviceaccount:" + namespace + ":" + serviceAccount
}

// ValidPattern reports why a lane entry is not a namespace name or a pattern of one: DNS-1123
// label characters, * and ?, at most 63 characters.
func ValidPattern(s string) error {
	if s == "" {
		return fmt.Errorf("must not be empty")
	}
	if len(s) > 63 {
		return fmt.Errorf("%q is longer than 63 characters", s)
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '*' || r == '?') {
			return fmt.Errorf("%q is not a namespace or a pattern of one (lower case letters, digits, '-', '*' and '?')", s)
		}
	}
	if _, err := path.Match(s, ""); err != nil {
		return fmt.Errorf("%q: %w", s, err)
	}
	return nil
}

// Refuse rejects every decision of res whose instance is outside the lane, with the reason:
// its change is not carried out, and nothing is written for it (docs/security.md).
func (p Policy) Refuse(res *planner.Result) {
	for i := range res.Decisions {
		d := &res.Decisions[i]
		if err := p.Check(d.Namespace); err != nil {
			d.Action, d.Plan, d.Reasons, d.Error = planner.ActionRejected, "", []string{}, err.Error()
		}
	}
}
