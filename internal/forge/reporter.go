package forge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/lru"

	"github.com/kudod-dev/kudod/internal/outbox"
)

// Reporter defaults.
const (
	DefaultQueueSize    = 1000
	DefaultDedupeSize   = 10000
	DefaultDrainTimeout = 10 * time.Second
)

// ReporterOptions configures a Reporter.
type ReporterOptions struct {
	// Providers maps repository names to their forges. Statuses of other repositories are only
	// logged (docs/design.md, Statuses: without a provider, statuses are in the cluster and the
	// logs only).
	Providers map[string]Provider
	// QueueSize bounds the statuses waiting to be posted, all repositories together; a full
	// queue drops its oldest status. DefaultQueueSize when zero.
	QueueSize int
	// DedupeSize bounds how many (repository, commit, context) the reporter remembers the
	// last posted state and description of. DefaultDedupeSize when zero.
	DedupeSize int
	// DrainTimeout bounds how long Start keeps posting queued statuses once its context ends.
	// DefaultDrainTimeout when zero.
	DrainTimeout time.Duration
	// RetryPauseMin and RetryPauseMax bound the pause before a status whose post failed is
	// tried again (outbox's defaults, 1s and 15s, when zero).
	RetryPauseMin, RetryPauseMax time.Duration
	// Registerer gets the reporter's metrics (controller-runtime's metrics.Registry in the
	// daemon); nil registers nothing.
	Registerer prometheus.Registerer
	Logger     logr.Logger
}

// Reporter posts commit statuses in the background, for all of the daemon's repositories.
//
// Report queues a status and returns at once (outbox.Queue, which notifications share). One
// worker per repository posts its statuses in the order they were reported, so a commit's
// pending never lands after its success; a status reported while an older one of the same
// commit and context still waits replaces it, as the forge would only show the newer one, and
// waits at the end of the queue: the forge receives what was reported, in that order, less
// what was replaced. A status equal to the last one posted for its commit and context (same
// state and description) is not posted again. A post that fails after the provider's retries
// for a reason that passes (the forge unreachable, a 5xx, a rate limit) is tried again after a
// pause, unless a newer status of its commit and context was reported meanwhile: statuses
// outlive a forge outage, in order, the newest winning. A refusal (another 4xx) is logged,
// counted and dropped.
type Reporter struct {
	providers map[string]Provider
	log       logr.Logger
	metrics   reporterMetrics
	// posted remembers the last status posted per statusKey: the forge shows it already.
	posted *lru.Cache
	queue  *outbox.Queue[Status]
}

// statusKey identifies what a forge shows one status for.
type statusKey struct{ repository, sha, context string }

// postedStatus is what a forge shows for a statusKey.
type postedStatus struct {
	state       State
	description string
	targetURL   string
}

type reporterMetrics struct {
	posts    *prometheus.CounterVec
	failures *prometheus.CounterVec
	dropped  *prometheus.CounterVec
	depth    prometheus.Gauge
}

// NewReporter returns a reporter for the given providers and registers its metrics:
// kudod_commit_status_posts_total{repository,state}, kudod_commit_status_failures_total,
// kudod_commit_status_dropped_total{repository} and kudod_commit_status_queue_depth.
func NewReporter(opts ReporterOptions) (*Reporter, error) {
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.DedupeSize <= 0 {
		opts.DedupeSize = DefaultDedupeSize
	}
	if opts.DrainTimeout <= 0 {
		opts.DrainTimeout = DefaultDrainTimeout
	}
	m := reporterMetrics{
		posts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kudod_commit_status_posts_total",
			Help: "Commit statuses the forge accepted, by repository and state.",
		}, []string{"repository", "state"}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kudod_commit_status_failures_total",
			Help: "Commit statuses that could not be posted after retries, by repository.",
		}, []string{"repository"}),
		dropped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kudod_commit_status_dropped_total",
			Help: "Commit statuses dropped unposted: the queue was full or kudod was stopping, by repository.",
		}, []string{"repository"}),
		depth: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kudod_commit_status_queue_depth",
			Help: "Commit statuses waiting to be posted.",
		}),
	}
	if opts.Registerer != nil {
		for _, c := range []prometheus.Collector{m.posts, m.failures, m.dropped, m.depth} {
			if err := opts.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("registering the commit status metrics: %w", err)
			}
		}
	}
	r := &Reporter{
		providers: map[string]Provider{},
		log:       opts.Logger,
		metrics:   m,
		posted:    lru.New(opts.DedupeSize),
	}
	var lanes []string
	for name, p := range opts.Providers {
		if p == nil {
			continue
		}
		r.providers[name] = p
		lanes = append(lanes, name)
	}
	r.queue = outbox.New(lanes, outbox.Options[Status]{
		Size:         opts.QueueSize,
		DrainTimeout: opts.DrainTimeout,
		Lane:         func(s Status) string { return s.Repository },
		Replaces:     func(old, s Status) bool { return old.SHA == s.SHA && old.Context == s.Context },
		Added: func(s Status) {
			r.log.Info("commit status", "repository", s.Repository, "commit", s.SHA, "context", s.Context, "state", s.State, "description", s.Description)
		},
		Deliver:  r.post,
		Retry:    Transient,
		PauseMin: opts.RetryPauseMin,
		PauseMax: opts.RetryPauseMax,
		Dropped: func(s Status, why string) {
			r.metrics.dropped.WithLabelValues(s.Repository).Inc()
			r.log.Info("commit status dropped: "+why, "repository", s.Repository, "commit", s.SHA, "context", s.Context, "state", s.State)
		},
		Depth: func(n int) { r.metrics.depth.Set(float64(n)) },
	})
	return r, nil
}

// Report logs s and queues it for its repository's forge; it never blocks. Statuses reported
// before Start wait for it; statuses reported after Start returned are dropped.
func (r *Reporter) Report(s Status) {
	s.Description = truncate(s.Description, MaxDescriptionLength)
	if !r.queue.Add(s) {
		// No forge for the repository: the log is where the status goes.
		r.log.Info("commit status", "repository", s.Repository, "commit", s.SHA, "context", s.Context, "state", s.State, "description", s.Description)
	}
}

// Start posts queued statuses until ctx ends, then keeps posting what is queued for at most
// the drain timeout, drops the rest and returns. It suits controller-runtime's manager.Add.
func (r *Reporter) Start(ctx context.Context) error {
	if err := r.queue.Start(ctx); err != nil {
		return fmt.Errorf("commit status reporter: %w", err)
	}
	return nil
}

func (r *Reporter) post(ctx context.Context, s Status) error {
	key := statusKey{s.Repository, s.SHA, s.Context}
	shown := postedStatus{s.State, s.Description, s.TargetURL}
	if last, ok := r.posted.Get(key); ok && last.(postedStatus) == shown {
		r.log.V(1).Info("commit status already posted", "repository", s.Repository, "commit", s.SHA, "context", s.Context, "state", s.State)
		return nil
	}
	if err := r.providers[s.Repository].SetStatus(ctx, s); err != nil {
		// The forge may or may not show s now.
		r.posted.Remove(key)
		r.metrics.failures.WithLabelValues(s.Repository).Inc()
		r.log.Error(err, "posting a commit status", "repository", s.Repository, "commit", s.SHA, "context", s.Context, "state", s.State, "retry", Transient(err) && ctx.Err() == nil)
		return err
	}
	r.posted.Add(key, shown)
	r.metrics.posts.WithLabelValues(s.Repository, string(s.State)).Inc()
	return nil
}

// Transient reports whether a post that failed may pass if tried again later: anything but a
// refusal (a 4xx other than a timeout or a rate limit).
func Transient(err error) bool {
	var apiErr *APIError
	return !(errors.As(err, &apiErr) && apiErr.StatusCode/100 == 4 &&
		apiErr.StatusCode != http.StatusRequestTimeout && apiErr.StatusCode != http.StatusTooManyRequests)
}
