package app

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/daemon"
	"github.com/kudod-dev/kudod/internal/config"
	"github.com/kudod-dev/kudod/internal/decrypt"
	"github.com/kudod-dev/kudod/manifests"
	"github.com/kudod-dev/kudod/sources"
)

func newPreviewCommand(s streams) *cobra.Command {
	var (
		configFile, repo, ref, cacheDir string
		ageKeyFile                      string
		limit                           int
	)
	cmd := &cobra.Command{
		Use:   "preview --config kudod.yaml --repo NAME --ref REF",
		Short: "Print what merging a ref would do to the cluster (plan diff and server-side dry-run diffs)",
		Long: `Compute the pull-request preview of a ref (for example refs/pull/7/head) against what the
cluster runs now, and print it as Markdown: the same report the daemon posts on pull requests.
Only read and dryRun=All requests reach the cluster. Exit status: 0 the change is valid,
1 it is rejected or cannot run, 2 the command failed.

SOPS-encrypted instance files are decrypted with the age keys of --age-key-file,
$SOPS_AGE_KEY_FILE or $SOPS_AGE_KEY, else of the repository's decryption Secret when your
kubeconfig may read it; without a key they are listed as "encrypted, key not available".`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Load(configFile)
			if err != nil {
				return exitCode(2, err)
			}
			var rc *config.Repository
			for i := range cfg.Repositories {
				if cfg.Repositories[i].Name == repo {
					rc = &cfg.Repositories[i]
				}
			}
			if rc == nil {
				return exitCode(2, fmt.Errorf("%s has no repository %q", configFile, repo))
			}
			rest, err := clusterConfig(cfg.Cluster.Kubeconfig)
			if err != nil {
				return exitCode(2, err)
			}
			scheme, err := daemon.Scheme()
			if err != nil {
				return exitCode(2, err)
			}
			c, err := client.New(rest, client.Options{Scheme: scheme})
			if err != nil {
				return exitCode(2, err)
			}
			if cacheDir == "" {
				dir, err := os.MkdirTemp("", "kudod-preview-")
				if err != nil {
					return exitCode(2, err)
				}
				defer os.RemoveAll(dir)
				cacheDir = dir
			}
			src, err := sources.New(rc.SourceOptions(filepath.Clean(cacheDir)))
			if err != nil {
				return exitCode(2, err)
			}
			defer src.Close()
			// The repository's lane, as the daemon with its default flags applies it.
			lane := rc.Policy(cfg.Cluster, "", defaultDaemonNamespace)
			decrypter, err := previewDecrypter(cmd.Context(), c, ageKeyFile, rc.Decryption)
			if err != nil {
				return exitCode(2, err)
			}
			rep, err := daemon.Preview(cmd.Context(), daemon.PreviewOptions{
				Client: client.NewDryRunClient(c), Reader: c, AllowClusterScoped: cfg.Cluster.AllowClusterScoped,
				Repository: daemon.Repository{Name: rc.Name, Source: src, Path: rc.Path, Prune: rc.Prune, AllowEmpty: rc.AllowEmpty, Approval: rc.Approval, Windows: rc.Windows, Lane: &lane},
				Ref:        ref, Decrypter: decrypter,
			})
			if err != nil {
				return exitCode(2, err)
			}
			fmt.Fprint(s.Out, rep.Markdown(limit))
			if !rep.Valid() {
				return exitCode(1, nil)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&configFile, "config", "kudod.yaml", "the daemon's configuration file")
	f.StringVar(&repo, "repo", "", "the repository's name in the configuration")
	f.StringVar(&ref, "ref", "", "the full ref to preview (refs/pull/7/head, refs/heads/feature)")
	f.StringVar(&cacheDir, "cache-dir", "", "where to clone (default: a temporary directory)")
	f.IntVar(&limit, "max-length", 1_000_000, "cut the report to this many characters")
	f.StringVar(&ageKeyFile, "age-key-file", "", "age keys that decrypt SOPS-encrypted instance files (default: $SOPS_AGE_KEY_FILE, $SOPS_AGE_KEY, then the repository's decryption Secret)")
	return cmd
}

// previewDecrypter returns the decrypter of `kudod preview`: the keys given to the command, else
// those of the repository's decryption Secret if the user may read it; nil when there are none
// (encrypted files are then listed, not failed).
func previewDecrypter(ctx context.Context, c client.Reader, keyFile string, d config.Decryption) (manifests.Decrypter, error) {
	ids, err := decrypt.FromEnvironment(keyFile)
	if err != nil {
		return nil, err
	}
	if len(ids) > 0 {
		return decrypt.NewSOPS(ids, ""), nil
	}
	if d.Provider == "" {
		return nil, nil
	}
	keys := &decrypt.SecretKeys{Reader: c, Namespace: d.SecretRef.Namespace, Name: d.SecretRef.Name}
	if sops := keys.Decrypter(ctx); sops.HasKeys() {
		return sops, nil
	}
	return nil, nil
}
