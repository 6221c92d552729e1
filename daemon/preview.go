package daemon

import (
	"context"
	"errors"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/internal/mask"
	"github.com/kudod-dev/kudod/internal/preview"
	"github.com/kudod-dev/kudod/internal/store"
	"github.com/kudod-dev/kudod/manifests"
	"github.com/kudod-dev/kudod/sources"
)

// PreviewOptions are what `kudod preview` needs: one repository and a cluster to read.
type PreviewOptions struct {
	// Client reads the cluster; give it a dry-run client (client.NewDryRunClient).
	Client             client.Client
	Repository         Repository
	Ref                string
	AllowClusterScoped bool
	Logger             logr.Logger
	// Reader reads the Secrets and ConfigMaps of parametersFrom (default: Client).
	Reader client.Reader
	// Decrypter decrypts the repository's SOPS-encrypted files (nil: none).
	Decrypter manifests.Decrypter
}

// Preview computes the preview of a ref of a repository against the cluster, for any CI
// system: the same report the daemon posts on pull requests, wired the same way. It sends only
// reads and dryRun=All requests.
func Preview(ctx context.Context, opts PreviewOptions) (*preview.Report, error) {
	if opts.Ref == "" {
		return nil, errors.New("no ref to preview")
	}
	s := store.New()
	m := mask.New()
	s.SetMasker(m)
	s.AddRepository(opts.Repository.Name, opts.Repository.Source, opts.Repository.Path)
	if opts.Decrypter != nil {
		s.SetDecryption(opts.Repository.Name, func(context.Context) manifests.Decrypter { return opts.Decrypter })
	}
	reader := opts.Reader
	if reader == nil {
		reader = opts.Client
	}
	p, err := newPreviewer(opts.Client, reader, nil, "", opts.Client.Scheme(), opts.Client.RESTMapper(), s, opts.AllowClusterScoped, manifests.RenderLimits{}, m, opts.Logger)
	if err != nil {
		return nil, err
	}
	snap, err := opts.Repository.Source.Fetch(ctx, sources.Ref{Name: opts.Ref})
	if err != nil {
		return nil, err
	}
	repo := opts.Repository.withDefaultLane(opts.AllowClusterScoped, "", "")
	return p.Preview(ctx, repo.planning(), snap)
}
