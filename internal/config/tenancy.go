package config

import (
	"fmt"
	"path"
	"strings"

	"gopkg.in/yaml.v3"
	"k8s.io/apimachinery/pkg/util/validation"

	"github.com/kudod-dev/kudod/internal/lanes"
)

// maxLaneEntries bounds a repository's namespaces and previews.authors lists.
const maxLaneEntries = 256

// namespaces reads a repository's lane: namespace names or patterns of them, at least one.
func (d *decoder) namespaces(n *yaml.Node, field string) []string {
	n = deref(n)
	list := d.stringList(n, field)
	if n.Kind == yaml.SequenceNode && len(list) == 0 {
		d.errorf(n, field, "must list at least one namespace or pattern (leave the field out for any namespace)")
	}
	if len(list) > maxLaneEntries {
		d.errorf(n, field, "lists %d entries, more than %d", len(list), maxLaneEntries)
		return list[:maxLaneEntries]
	}
	for i, s := range list {
		if err := lanes.ValidPattern(s); err != nil {
			d.errorf(n.Content[i], fmt.Sprintf("%s[%d]", field, i), "%v", err)
		}
	}
	return list
}

// serviceAccountName reads a service account's name: a DNS-1123 subdomain.
func (d *decoder) serviceAccountName(n *yaml.Node, field string) string {
	s := d.str(n, field)
	if errs := validation.IsDNS1123Subdomain(s); s != "" && len(errs) > 0 {
		d.errorf(n, field, "%q is not a service account name: %s", s, strings.Join(errs, "; "))
	} else if s == "" {
		d.errorf(n, field, "must name a service account")
	}
	return s
}

// previewAuthors reads the forge user names (or path.Match patterns of them) whose pull
// requests from forks are previewed.
func (d *decoder) previewAuthors(n *yaml.Node, field string) []string {
	n = deref(n)
	list := d.stringList(n, field)
	if len(list) > maxLaneEntries {
		d.errorf(n, field, "lists %d entries, more than %d", len(list), maxLaneEntries)
		return list[:maxLaneEntries]
	}
	for i, s := range list {
		_, err := path.Match(s, "")
		switch {
		case s == "" || len(s) > 255 || strings.ContainsAny(s, " \t\n/"):
			d.errorf(n.Content[i], fmt.Sprintf("%s[%d]", field, i), "%q is not a user name or a pattern of one", s)
		case err != nil:
			d.errorf(n.Content[i], fmt.Sprintf("%s[%d]", field, i), "invalid pattern %q: %v", s, err)
		}
	}
	return list
}

// ClusterScopedAllowed says whether the repository's packages may write cluster-scoped
// objects: its allowClusterScoped when set; else false when a service account policy is on
// (the repository's serviceAccountName or the daemon's --default-service-account), as a
// tenant's account has no cluster-wide rights to use; else cluster.allowClusterScoped.
func (r Repository) ClusterScopedAllowed(c Cluster, defaultServiceAccount string) bool {
	switch {
	case r.AllowClusterScoped != nil:
		return *r.AllowClusterScoped
	case r.ServiceAccountName != "" || defaultServiceAccount != "":
		return false
	}
	return c.AllowClusterScoped
}

// Policy is the repository's lane as the daemon and `kudod plan` enforce it.
// defaultServiceAccount is the daemon's --default-service-account, daemonNamespace its own
// namespace.
func (r Repository) Policy(c Cluster, defaultServiceAccount, daemonNamespace string) lanes.Policy {
	return lanes.Policy{
		Repository:            r.Name,
		Namespaces:            r.Namespaces,
		AllowClusterScoped:    r.ClusterScopedAllowed(c, defaultServiceAccount),
		ServiceAccountName:    r.ServiceAccountName,
		DefaultServiceAccount: defaultServiceAccount,
		DaemonNamespace:       daemonNamespace,
	}
}
