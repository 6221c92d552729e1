package daemon

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/fluxcd/cli-utils/pkg/kstatus/polling"
	"github.com/fluxcd/pkg/ssa"
	"github.com/go-logr/logr"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
	"github.com/kudod-dev/kudod/internal/forge"
	"github.com/kudod-dev/kudod/sources"
)

// Commenter posts the preview comment of a pull request (forge.Provider does).
type Commenter interface {
	UpsertComment(ctx context.Context, number int, marker, body string) error
	MaxCommentLength() int
}

// previewQueue runs previews on a worker of their own, so they never delay real plans: the
// latest head of each ref waits its turn, an older head of the same ref is replaced.
type previewQueue struct {
	previewer  *previewer
	reporter   StatusReporter
	commenters map[string]Commenter
	log        logr.Logger

	mu      sync.Mutex
	pending map[string]previewJob // repository + ref → job
	order   []string
	done    map[string]string // repository + ref → SHA previewed
	wake    chan struct{}
}

type previewJob struct {
	poller *poller
	ref    string
	sha    string
}

func newPreviewQueue(p *previewer, reporter StatusReporter, commenters map[string]Commenter, log logr.Logger) *previewQueue {
	return &previewQueue{previewer: p, reporter: reporter, commenters: commenters, log: log,
		pending: map[string]previewJob{}, done: map[string]string{}, wake: make(chan struct{}, 1)}
}

// discover lists a repository's preview refs and queues each head not previewed yet.
func (q *previewQueue) discover(ctx context.Context, p *poller) {
	if len(p.repo.PreviewRefs) == 0 {
		return
	}
	refs, err := p.repo.Source.ListRefs(ctx, p.repo.PreviewRefs)
	if err != nil {
		q.log.Error(err, "listing preview refs", "repository", p.repo.Name)
		return
	}
	q.mu.Lock()
	for ref, sha := range refs {
		key := p.repo.Name + " " + ref
		if q.done[key] == sha || q.pending[key].sha == sha {
			continue
		}
		if _, queued := q.pending[key]; !queued {
			q.order = append(q.order, key)
		}
		q.pending[key] = previewJob{poller: p, ref: ref, sha: sha}
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// run works through the queue until ctx ends.
func (q *previewQueue) run(ctx context.Context) error {
	for {
		q.mu.Lock()
		var job previewJob
		var key string
		if len(q.order) > 0 {
			key, q.order = q.order[0], q.order[1:]
			job = q.pending[key]
			delete(q.pending, key)
		}
		q.mu.Unlock()
		if key == "" {
			select {
			case <-ctx.Done():
				return nil
			case <-q.wake:
			}
			continue
		}
		// A failed preview is not retried until the ref moves: the forge client has already
		// retried, and recomputing on every poll would only load the cluster.
		if err := q.preview(ctx, job); err != nil {
			q.log.Error(err, "preview failed", "repository", job.poller.repo.Name, "ref", job.ref)
		}
		q.mu.Lock()
		q.done[key] = job.sha
		q.mu.Unlock()
	}
}

func (q *previewQueue) preview(ctx context.Context, job previewJob) error {
	repo := job.poller.repo
	snap, err := repo.Source.Fetch(ctx, sources.Ref{Name: job.ref})
	if err != nil {
		return err
	}
	if snap.Commit != job.sha {
		job.sha = snap.Commit // the ref moved since it was listed: preview what is there now
	}
	rep, err := q.previewer.preview(ctx, repo, snap)
	status := forge.Status{Repository: repo.Name, SHA: snap.Commit, Context: "kudod/preview"}
	if err != nil {
		status.State, status.Description = forge.StateFailure, truncate("preview failed: "+err.Error(), 139)
		q.reporter.Report(status)
		return err
	}
	if rep.Valid() {
		status.State, status.Description = forge.StateSuccess, truncate(rep.Summary(), 139)
	} else {
		status.State, status.Description = forge.StateFailure, truncate(rep.FirstProblem(), 139)
	}
	q.reporter.Report(status)
	q.log.Info("preview", "repository", repo.Name, "ref", job.ref, "commit", short(snap.Commit), "valid", rep.Valid(), "summary", rep.mask(rep.Summary()))
	if n := pullRequestNumber(job.ref); n > 0 {
		if c := q.commenters[repo.Name]; c != nil {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			if err := c.UpsertComment(cctx, n, previewMarker(repo.Name), rep.Markdown(c.MaxCommentLength())); err != nil {
				return fmt.Errorf("comment on pull request %d: %w", n, err)
			}
		}
	}
	return nil
}

// PreviewOptions are what `kudod preview` needs: one repository and a cluster to read.
type PreviewOptions struct {
	Client             client.Client
	Repository         Repository
	Ref                string
	AllowClusterScoped bool
	Logger             logr.Logger
}

// Preview computes the preview of a ref of a repository against the cluster, for any CI
// system: the same report the daemon posts on pull requests. It sends only reads and dryRun=All
// requests.
func Preview(ctx context.Context, opts PreviewOptions) (*PreviewReport, error) {
	store := newPackageStore()
	store.addSource(opts.Repository.Name, opts.Repository.Source, opts.Repository.Path)
	resources := ssa.NewResourceManager(opts.Client, polling.NewStatusPoller(opts.Client, opts.Client.RESTMapper(), polling.Options{}), ssa.Owner{Field: v1alpha1.FieldManager, Group: v1alpha1.GroupVersion.Group})
	engine := applier.NewEngine(opts.Client, resources, nil, applier.Options{AllowClusterScoped: opts.AllowClusterScoped})
	p := &previewer{client: opts.Client, engine: engine, store: store, log: opts.Logger}
	if opts.Ref == "" {
		return nil, fmt.Errorf("no ref to preview")
	}
	snap, err := opts.Repository.Source.Fetch(ctx, sources.Ref{Name: opts.Ref})
	if err != nil {
		return nil, err
	}
	return p.preview(ctx, opts.Repository, snap)
}
