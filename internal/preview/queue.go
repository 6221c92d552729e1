package preview

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/internal/desired"
	"github.com/kudod-dev/kudod/internal/forge"
	"github.com/kudod-dev/kudod/sources"
)

// Commenter is what previews need of a repository's forge (forge.Provider is one): who opened
// a pull request and from where, and a place for the preview comment. It is one interface so
// that a wrapper (the daemon masks every comment) cannot drop the question of who opened it.
type Commenter interface {
	PullRequest(ctx context.Context, number int) (forge.PullRequest, error)
	UpsertComment(ctx context.Context, number int, marker, body string) error
	MaxCommentLength() int
}

// Source is what previews need of a git repository (sources.Source).
type Source interface {
	ListRefs(ctx context.Context, patterns []string) (map[string]string, error)
	Fetch(ctx context.Context, ref sources.Ref) (sources.Snapshot, error)
}

// Repository is a repository whose refs are previewed.
type Repository struct {
	desired.Repository
	Source Source
	// Refs are path.Match patterns of the refs to preview (refs/pull/*/head).
	Refs []string
	// Authors admits pull requests to previews.
	Authors Authors
}

// QueueOptions configure a Queue.
type QueueOptions struct {
	Previewer *Previewer
	// Reporter gets the kudod/preview status of each previewed head.
	Reporter forge.StatusReporter
	// Commenters post the report on pull requests, by repository name.
	Commenters map[string]Commenter
	Log        logr.Logger
}

// Queue runs previews on a worker of its own, so they never delay real plans: the latest head
// of each ref waits its turn, an older head of the same ref is replaced.
type Queue struct {
	opts QueueOptions

	mu      sync.Mutex
	pending map[string]job // repository + ref → job
	order   []string
	done    map[string]string // repository + ref → SHA previewed
	wake    chan struct{}
}

type job struct {
	repo Repository
	ref  string
	sha  string
}

// NewQueue returns an empty queue; Run works through it.
func NewQueue(opts QueueOptions) *Queue {
	return &Queue{opts: opts, pending: map[string]job{}, done: map[string]string{}, wake: make(chan struct{}, 1)}
}

// Discover lists a repository's preview refs and queues each head not previewed yet.
func (q *Queue) Discover(ctx context.Context, repo Repository) {
	if len(repo.Refs) == 0 {
		return
	}
	refs, err := repo.Source.ListRefs(ctx, repo.Refs)
	if err != nil {
		q.opts.Log.Error(err, "listing preview refs", "repository", repo.Name)
		return
	}
	q.mu.Lock()
	for ref, sha := range refs {
		key := repo.Name + " " + ref
		if q.done[key] == sha || q.pending[key].sha == sha {
			continue
		}
		if _, queued := q.pending[key]; !queued {
			q.order = append(q.order, key)
		}
		q.pending[key] = job{repo: repo, ref: ref, sha: sha}
	}
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// Run works through the queue until ctx ends.
func (q *Queue) Run(ctx context.Context) error {
	for {
		q.mu.Lock()
		var j job
		var key string
		if len(q.order) > 0 {
			key, q.order = q.order[0], q.order[1:]
			j = q.pending[key]
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
		if err := q.preview(ctx, j); err != nil {
			q.opts.Log.Error(err, "preview failed", "repository", j.repo.Name, "ref", j.ref)
		}
		q.mu.Lock()
		q.done[key] = j.sha
		q.mu.Unlock()
	}
}

// preview previews the ref's head as it is now, reports its status, and comments on its pull
// request.
func (q *Queue) preview(ctx context.Context, j job) error {
	repo := j.repo
	admitted, why, err := q.admit(ctx, repo, j.ref)
	if err != nil {
		return fmt.Errorf("who opened %s: %w", j.ref, err)
	}
	if !admitted {
		// Nothing of the pull request is fetched, rendered or sent to the cluster.
		q.opts.Log.Info("preview skipped", "repository", repo.Name, "ref", j.ref, "reason", why)
		q.opts.Reporter.Report(forge.Status{Repository: repo.Name, SHA: j.sha, Context: forge.ContextPreview, State: forge.StateError, Description: why})
		return nil
	}
	snap, err := repo.Source.Fetch(ctx, sources.Ref{Name: j.ref})
	if err != nil {
		return err
	}
	rep, err := q.opts.Previewer.Preview(ctx, repo.Repository, snap)
	status := forge.Status{Repository: repo.Name, SHA: snap.Commit, Context: forge.ContextPreview}
	if err != nil {
		status.State, status.Description = forge.StateFailure, "preview failed: "+err.Error()
		q.opts.Reporter.Report(status)
		return err
	}
	if rep.Valid() {
		status.State, status.Description = forge.StateSuccess, rep.Summary()
	} else {
		status.State, status.Description = forge.StateFailure, rep.FirstProblem()
	}
	q.opts.Reporter.Report(status)
	q.opts.Log.Info("preview", "repository", repo.Name, "ref", j.ref, "commit", v1alpha1.ShortRevision(snap.Commit), "valid", rep.Valid(), "summary", rep.mask(rep.Summary()))
	if n := pullRequestNumber(j.ref); n > 0 {
		if c := q.opts.Commenters[repo.Name]; c != nil {
			cctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			if err := c.UpsertComment(cctx, n, Marker(repo.Name), rep.Markdown(c.MaxCommentLength())); err != nil {
				return fmt.Errorf("comment on pull request %d: %w", n, err)
			}
		}
	}
	return nil
}
