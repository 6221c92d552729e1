// Package config reads and validates the daemon's configuration, kudod.yaml
// (docs/configuration.md).
// Unknown fields and bad values are errors naming the file, line and field; defaults are
// filled in, relative file paths are resolved against the file's directory, and secrets are
// only ever named (files, environment variables), never written in the file.
package config

import (
	"os"
	"time"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/sources"
)

// Defaults for fields a repository leaves out.
const (
	DefaultInterval      = time.Minute
	DefaultDriftInterval = 10 * time.Minute
	DefaultTimeout       = sources.DefaultTimeout
	DefaultPath          = "."
)

// Commit status providers.
const (
	ProviderGitea  = "gitea"
	ProviderGitHub = "github"
	ProviderGitLab = "gitlab"
)

// Config is the whole of kudod.yaml.
type Config struct {
	Repositories []Repository
	Cluster      Cluster
	// Notifications receive plan outcomes (notifications.go).
	Notifications []Notification
}

// Repository is one git repository kudod follows.
type Repository struct {
	// Name identifies the repository in status, logs and the webhook URL /hooks/<Name>; a
	// DNS-1123 label, unique in the file.
	Name string
	// URL is an https, http, ssh (or scp-style user@host:path) or file URL, or a local path
	// (made absolute).
	URL string
	// Ref is what to track; `branch: x` at the top level is short for ref {branch: x}, and
	// with neither the branch is main.
	Ref sources.Ref
	// Interval is how often the remote is polled.
	Interval time.Duration
	// Path is the folder of the repository that is scanned: a clean slash path, "." for all.
	Path string
	// Auth names the credential files (absolute paths).
	Auth sources.Auth
	// Webhook enables POST /hooks/<Name> when SecretFile is set.
	Webhook Webhook
	// Previews enables pull-request previews for the refs matching its patterns.
	Previews Previews
	// Status enables commit statuses when Provider is set.
	Status Status
	// Prune: instances removed from git are cleaned up (true, the default) or only reported.
	Prune bool
	// DriftInterval is how often live objects are compared with what plans applied.
	DriftInterval time.Duration
	// AllowEmpty lets a commit remove every instance of the repository.
	AllowEmpty bool
	// Timeout bounds each git operation against the remote.
	Timeout time.Duration
	// Approval and Windows are defaults for the repository's instances: which plans wait for
	// `kudod approve`, and when plans git triggers may start (docs/operations.md).
	Approval *v1alpha1.Approval
	Windows  []v1alpha1.Window
	// Namespaces is the repository's lane: the namespaces (or path.Match patterns such as
	// team-*) its instances may target; empty: any but the daemon's own (docs/security.md).
	Namespaces []string
	// AllowClusterScoped, when set, says whether the repository's packages may write
	// cluster-scoped objects; unset, see ClusterScopedAllowed.
	AllowClusterScoped *bool
	// ServiceAccountName is impersonated by the plans of the repository's instances that name
	// no service account of their own (docs/security.md).
	ServiceAccountName string
	// Decryption decrypts SOPS-encrypted instance files when Provider is set.
	Decryption Decryption
}

// Webhook configures the repository's push webhook.
type Webhook struct {
	// SecretFile holds the secret that signs or accompanies each delivery.
	SecretFile string
}

// Previews configures pull-request previews (docs/design.md, Previews).
type Previews struct {
	// Refs are path.Match patterns of full ref names, e.g. refs/pull/*/head.
	Refs []string
	// Authors are the forge user names whose pull requests from forks are previewed
	// (path.Match patterns); pull requests from the repository's own branches always are.
	Authors []string
	// Forks: pull requests from forks are previewed whoever opened them.
	Forks bool
}

// Status configures commit statuses and preview comments on the git host.
type Status struct {
	// Provider is gitea, github or gitlab; empty disables statuses.
	Provider string
	// URL is the git host's base URL (https://git.example.com, https://github.com); by default
	// the scheme and host of the repository's URL (https for ssh URLs).
	URL string
	// TokenFile or TokenEnv (an environment variable's name) holds the API token.
	TokenFile string
	TokenEnv  string
	// Owner and Repo name the repository on Gitea and GitHub; Project (group/name) on
	// GitLab. By default they come from the repository URL's path.
	Owner   string
	Repo    string
	Project string
}

// Cluster configures the connection to Kubernetes.
type Cluster struct {
	// Kubeconfig is a kubeconfig file; empty means in-cluster, then $KUBECONFIG.
	Kubeconfig string
	// AllowClusterScoped: cluster-scoped objects in packages are applied (true, the
	// default) or rejected.
	AllowClusterScoped bool
}

// Load reads and validates the configuration file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, path)
}

// SourceOptions returns the options of the git source for r, keeping its clone under
// cacheDir.
func (r Repository) SourceOptions(cacheDir string) sources.Options {
	return sources.Options{
		Name:     r.Name,
		URL:      r.URL,
		Ref:      r.Ref,
		Auth:     r.Auth,
		CacheDir: cacheDir,
		Timeout:  r.Timeout,
	}
}
