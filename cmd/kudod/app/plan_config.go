package app

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/internal/config"
	"github.com/kudod-dev/kudod/internal/lanes"
	"github.com/kudod-dev/kudod/sources"
)

// planSettings are what `kudod plan` plans a repository with: the flags, or with --config the
// settings of one repository of kudod.yaml, as the daemon applies them (docs/cli.md).
type planSettings struct {
	// repo is where to read the repository: --repo, else the configured URL.
	repo string
	// auth are the configured credentials, used when repo is the configured URL.
	auth                sources.Auth
	path                string
	allowEmpty, noPrune bool
	// lane refuses instances outside the repository's namespaces; nil without --config.
	lane *lanes.Policy
	// approval and windows are the repository's defaults (docs/operations.md).
	approval *v1alpha1.Approval
	windows  []v1alpha1.Window
	// daemonNamespace is the daemon's own namespace (--daemon-namespace), refused to lanes
	// that do not list it.
	daemonNamespace string
	// The repository's decryption settings (repositories[].decryption) belong here too: each
	// snapshot is decrypted, as the daemon decrypts it, before it is indexed (plan.go, index).
}

// fromConfig reads the settings of repository name (empty: the file's only repository) from a
// kudod.yaml. Flags given on the command line win over the file.
func (ps *planSettings) fromConfig(cmd *cobra.Command, file, name string) error {
	cfg, err := config.Load(file)
	if err != nil {
		return err
	}
	var rc *config.Repository
	switch {
	case name != "":
		for i := range cfg.Repositories {
			if cfg.Repositories[i].Name == name {
				rc = &cfg.Repositories[i]
			}
		}
		if rc == nil {
			return fmt.Errorf("%s has no repository %q", file, name)
		}
	case len(cfg.Repositories) == 1:
		rc = &cfg.Repositories[0]
	default:
		names := make([]string, 0, len(cfg.Repositories))
		for _, r := range cfg.Repositories {
			names = append(names, r.Name)
		}
		return fmt.Errorf("%s has %d repositories: name one with --repository (%s)", file, len(names), strings.Join(names, ", "))
	}
	f := cmd.Flags()
	if !f.Changed("repo") {
		ps.repo, ps.auth = rc.URL, rc.Auth
	}
	if !f.Changed("path") {
		ps.path = rc.Path
	}
	if !f.Changed("allow-empty") {
		ps.allowEmpty = rc.AllowEmpty
	}
	if !f.Changed("no-prune") {
		ps.noPrune = !rc.Prune
	}
	lane := rc.Policy(cfg.Cluster, "", ps.daemonNamespace)
	ps.lane = &lane
	ps.approval, ps.windows = rc.Approval, rc.Windows
	return nil
}

// errNoRepo is a `kudod plan` without a repository to read.
var errNoRepo = errors.New("--repo (or --config) and --to are required")
