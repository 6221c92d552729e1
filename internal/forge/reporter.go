package forge

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/utils/lru"
)

// Reporter defaults.
const (
	DefaultQueueSize    = 1000
	DefaultDedupeSize   = 10000
	DefaultDrainTimeout = 10 * time.Second
)

// The pauses between tries of a status whose post failed for a reason that passes.
const (
	retryPauseMin = time.Second
	retryPauseMax = 15 * time.Second
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
	// Registerer gets the reporter's metrics (controller-runtime's metrics.Registry in the
	// daemon); nil registers nothing.
	Registerer prometheus.Registerer
	Logger     logr.Logger
}

// Reporter posts commit statuses in the background, for all of the daemon's repositories.
//
// Report queues a status and returns at once. One worker per repository posts its statuses in
// the order they were reported, so a commit's pending never lands after its success; a status
// reported while an older one of the same commit and context still waits replaces it, as the
// forge would only show the newer one, and waits in its own place at the end of the queue: the
// forge receives what was reported, in that order, less what was replaced. A status equal to
// the last one posted for its commit and context (same state and description) is not posted
// again. A post that fails after the provider's retries for a reason that passes (the forge
// unreachable, a 5xx, a rate limit) goes back to the head of its queue and is tried again after
// a pause (retryPauseMin, doubling up to retryPauseMax), unless a newer status of its commit
// and context was reported meanwhile: statuses outlive a forge outage, in order, the newest
// winning. A refusal (another 4xx) is logged, counted and dropped.
type Reporter struct {
	providers map[string]Provider
	size      int
	drain     time.Duration
	log       logr.Logger
	metrics   reporterMetrics
	// posted remembers the last status posted per statusKey: the forge shows it already.
	posted *lru.Cache
	// pauseMin and pauseMax bound the pause before a failed post is tried again.
	pauseMin, pauseMax time.Duration

	mu      sync.Mutex
	queues  map[string]*statusQueue
	depth   int
	seq     uint64
	started bool
	stopped bool
}

// statusKey identifies what a forge shows one status for.
type statusKey struct{ repository, sha, context string }

// postedStatus is what a forge shows for a statusKey.
type postedStatus struct {
	state       State
	description string
	targetURL   string
}

type queuedStatus struct {
	seq    uint64 // age: the smallest is the oldest in the whole reporter
	status Status
}

// statusQueue is one repository's statuses waiting to be posted, oldest first.
type statusQueue struct {
	items []queuedStatus
	wake  chan struct{}
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
			Help: "Commit status posts that failed after the provider's retries, by repository; a post that can succeed later is tried again.",
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
		size:      opts.QueueSize,
		drain:     opts.DrainTimeout,
		log:       opts.Logger,
		metrics:   m,
		posted:    lru.New(opts.DedupeSize),
		pauseMin:  retryPauseMin,
		pauseMax:  retryPauseMax,
		queues:    map[string]*statusQueue{},
	}
	for name, p := range opts.Providers {
		if p == nil {
			continue
		}
		r.providers[name] = p
		r.queues[name] = &statusQueue{wake: make(chan struct{}, 1)}
	}
	return r, nil
}

// Report logs s and queues it for its repository's forge; it never blocks. Statuses reported
// before Start wait for it; statuses reported after Start returned are dropped.
func (r *Reporter) Report(s Status) {
	s.Description = truncate(s.Description, MaxDescriptionLength)
	r.mu.Lock()
	defer r.mu.Unlock()
	// Logged under the lock: the log shows statuses in the order they are queued.
	r.log.Info("commit status", "repository", s.Repository, "commit", s.SHA, "context", s.Context, "state", s.State, "description", s.Description)
	q, ok := r.queues[s.Repository]
	if !ok {
		return
	}
	if r.stopped {
		r.metrics.dropped.WithLabelValues(s.Repository).Inc()
		r.log.Info("commit status dropped: kudod is stopping", "repository", s.Repository, "commit", s.SHA, "context", s.Context, "state", s.State)
		return
	}
	// A newer status of a commit and context replaces the one waiting, and waits at the end:
	// what the forge receives is then always what was reported, in the order reported, less
	// the statuses replaced.
	replaced := false
	for i := range q.items {
		if old := q.items[i].status; old.SHA == s.SHA && old.Context == s.Context {
			q.items = append(q.items[:i], q.items[i+1:]...)
			r.depth--
			replaced = true
			break
		}
	}
	if !replaced && r.depth >= r.size {
		r.dropOldest()
	}
	r.seq++
	q.items = append(q.items, queuedStatus{seq: r.seq, status: s})
	r.depth++
	r.metrics.depth.Set(float64(r.depth))
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// dropOldest removes the status reported first of all those waiting. r.mu is held.
func (r *Reporter) dropOldest() {
	var oldest *statusQueue
	for _, q := range r.queues {
		if len(q.items) > 0 && (oldest == nil || q.items[0].seq < oldest.items[0].seq) {
			oldest = q
		}
	}
	if oldest == nil {
		return
	}
	s := oldest.items[0].status
	oldest.items = oldest.items[1:]
	r.depth--
	r.metrics.depth.Set(float64(r.depth))
	r.metrics.dropped.WithLabelValues(s.Repository).Inc()
	r.log.Info("commit status dropped: the queue is full", "repository", s.Repository, "commit", s.SHA, "context", s.Context, "state", s.State)
}

// pop takes a repository's oldest waiting status.
func (r *Reporter) pop(repository string) (queuedStatus, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.queues[repository]
	if len(q.items) == 0 {
		return queuedStatus{}, false
	}
	item := q.items[0]
	q.items = q.items[1:]
	r.depth--
	r.metrics.depth.Set(float64(r.depth))
	return item, true
}

// requeue puts a status whose post failed back at the head of its queue, to be tried again;
// it reports false when the status is gone instead: a newer status of its commit and context
// waits (which the forge should show, not this one), the queue is full (this status is older
// than any waiting) or kudod is stopping.
func (r *Reporter) requeue(item queuedStatus) bool {
	s := item.status
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.queues[s.Repository]
	for _, waiting := range q.items {
		if waiting.status.SHA == s.SHA && waiting.status.Context == s.Context {
			return false
		}
	}
	if r.stopped || r.depth >= r.size {
		r.metrics.dropped.WithLabelValues(s.Repository).Inc()
		r.log.Info("commit status dropped: it could not be posted and the queue is full", "repository", s.Repository, "commit", s.SHA, "context", s.Context, "state", s.State)
		return false
	}
	q.items = append([]queuedStatus{item}, q.items...)
	r.depth++
	r.metrics.depth.Set(float64(r.depth))
	return true
}

// Start posts queued statuses until ctx ends, then keeps posting what is queued for at most
// the drain timeout, drops the rest and returns. It suits controller-runtime's manager.Add.
func (r *Reporter) Start(ctx context.Context) error {
	r.mu.Lock()
	if r.started {
		r.mu.Unlock()
		return errors.New("commit status reporter: already started")
	}
	r.started = true
	r.mu.Unlock()

	// Posts outlive ctx by the drain timeout: a status being posted at shutdown still lands.
	postCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stopDrain := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(r.drain, cancel)
		context.AfterFunc(postCtx, func() { t.Stop() })
	})
	defer stopDrain()

	var wg sync.WaitGroup
	for name := range r.queues {
		wg.Go(func() { r.work(ctx, postCtx, name) })
	}
	<-ctx.Done()
	wg.Wait()

	r.mu.Lock()
	defer r.mu.Unlock()
	r.stopped = true
	for name, q := range r.queues {
		for _, item := range q.items {
			r.metrics.dropped.WithLabelValues(name).Inc()
			r.log.Info("commit status dropped: kudod is stopping", "repository", name, "commit", item.status.SHA, "context", item.status.Context, "state", item.status.State)
		}
		r.depth -= len(q.items)
		q.items = nil
	}
	r.metrics.depth.Set(float64(r.depth))
	return nil
}

// work posts one repository's statuses in order; once ctx ends it empties the queue, unless
// postCtx ends first.
func (r *Reporter) work(ctx, postCtx context.Context, repository string) {
	q := r.queues[repository]
	pause := r.pauseMin
	for postCtx.Err() == nil {
		item, ok := r.pop(repository)
		if !ok {
			if ctx.Err() != nil {
				return
			}
			select {
			case <-q.wake:
			case <-ctx.Done():
			}
			continue
		}
		err := r.post(postCtx, item.status)
		if err == nil || refused(err) || ctx.Err() != nil {
			pause = r.pauseMin
			continue
		}
		if !r.requeue(item) {
			continue
		}
		// The forge is unreachable or failing: wait before trying again, the queue behind it.
		select {
		case <-time.After(pause):
		case <-ctx.Done():
		}
		pause = min(2*pause, r.pauseMax)
	}
}

// refused reports whether the forge refused a status in a way that trying again would not
// change (a 4xx other than a timeout or a rate limit).
func refused(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode/100 == 4 &&
		apiErr.StatusCode != http.StatusRequestTimeout && apiErr.StatusCode != http.StatusTooManyRequests
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
		r.log.Error(err, "posting a commit status", "repository", s.Repository, "commit", s.SHA, "context", s.Context, "state", s.State, "retry", !refused(err) && ctx.Err() == nil)
		return err
	}
	r.posted.Add(key, shown)
	r.metrics.posts.WithLabelValues(s.Repository, string(s.State)).Inc()
	return nil
}
