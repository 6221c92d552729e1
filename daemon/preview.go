package daemon

import (
	"context"
	"errors"

	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"

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
}

// Preview computes the preview of a ref of a repository against the cluster, for any CI
// system: the same report the daemon posts on pull requests, wired the same way. It sends only
// reads and dryRun=All requests.
func Preview(ctx context.Context, opts PreviewOptions) (*preview.Report, error) {
	if opts.Ref == "" {
		return nil, errors.New("no ref to preview")
	}
	s := store.New()
	s.AddRepository(opts.Repository.Name, opts.Repository.Source, opts.Repository.Path)
	p := newPreviewer(opts.Client, s, opts.AllowClusterScoped, manifests.RenderLimits{}, opts.Logger)
	snap, err := opts.Repository.Source.Fetch(ctx, sources.Ref{Name: opts.Ref})
	if err != nil {
		return nil, err
	}
	return p.Preview(ctx, opts.Repository.planning(), snap)
}
