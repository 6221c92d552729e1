package poll

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// DefaultForwardInterval is the shortest time between two requests a standby passes on for
// one repository.
const DefaultForwardInterval = time.Second

// forwardTimeout bounds one write of a passed-on request.
const forwardTimeout = 10 * time.Second

// Forwarder passes poll requests that reach a standby (webhook deliveries) on to the leader
// through the repository's status ConfigMap, as `kudod reconcile` does (docs/design.md,
// Repository). Requests coalesce: a repository has at most one request waiting, and one
// goroutine writes at most one annotation per repository per interval, so a burst of
// deliveries costs one or two API writes, not a goroutine and a write each.
type Forwarder struct {
	client    client.Client
	namespace string
	interval  time.Duration
	log       logr.Logger
	now       func() time.Time

	mu      sync.Mutex
	pending map[string]bool
	last    map[string]time.Time
	wake    chan struct{}
}

// NewForwarder returns a Forwarder writing to the status ConfigMaps in namespace through c, at
// most once per repository per interval (DefaultForwardInterval when zero).
func NewForwarder(c client.Client, namespace string, interval time.Duration, log logr.Logger) *Forwarder {
	if interval <= 0 {
		interval = DefaultForwardInterval
	}
	return &Forwarder{client: c, namespace: namespace, interval: interval, log: log, now: time.Now,
		pending: map[string]bool{}, last: map[string]time.Time{}, wake: make(chan struct{}, 1)}
}

// Forward asks for a poll of repository on the leader; it never blocks. The repository must be
// one of the daemon's: the caller (the webhook) has checked the delivery's signature, so the
// pending set is bounded by the configured repositories.
func (f *Forwarder) Forward(repository string) {
	f.mu.Lock()
	f.pending[repository] = true
	f.mu.Unlock()
	select {
	case f.wake <- struct{}{}:
	default:
	}
}

// Start writes pending requests until ctx ends; it suits controller-runtime's manager.Add on
// every replica.
func (f *Forwarder) Start(ctx context.Context) error {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		if wait := f.flush(ctx); wait > 0 {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-f.wake:
		case <-timer.C:
		}
	}
}

// flush writes each pending request whose repository's interval has passed, and returns how
// long until the next one is due (zero when none waits).
func (f *Forwarder) flush(ctx context.Context) time.Duration {
	f.mu.Lock()
	now := f.now()
	var due []string
	var next time.Duration
	for repo := range f.pending {
		if wait := f.last[repo].Add(f.interval).Sub(now); wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		due = append(due, repo)
		delete(f.pending, repo)
		f.last[repo] = now
	}
	f.mu.Unlock()
	for _, repo := range due {
		if err := f.write(ctx, repo, now); err != nil && ctx.Err() == nil {
			f.log.Error(err, "passing a webhook delivery on to the leader", "repository", repo)
		}
	}
	return next
}

// write annotates the repository's status ConfigMap with a new reconcile request.
func (f *Forwarder) write(ctx context.Context, repository string, at time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	cm := &corev1.ConfigMap{}
	cm.Namespace, cm.Name = f.namespace, v1alpha1.SourceStatusName(repository)
	patch := []byte(fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.AnnotationReconcileRequest, at.UTC().Format(time.RFC3339Nano)))
	if err := f.client.Patch(ctx, cm, client.RawPatch(types.MergePatchType, patch)); err != nil {
		return fmt.Errorf("request a poll of %s: %w", repository, err)
	}
	return nil
}
