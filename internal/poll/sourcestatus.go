package poll

import (
	"context"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/kudod-dev/kudod/api/v1alpha1"
	"github.com/kudod-dev/kudod/applier"
)

// sourceHeartbeat bounds how stale a recorded poll time may get: the record is rewritten when
// something changes and at least this often, so an idle daemon makes no API writes.
const sourceHeartbeat = 10 * time.Minute

// recordSource writes the repository's status when it changed, and at least every
// sourceHeartbeat.
func (p *Poller) recordSource(ctx context.Context, next time.Time) {
	p.mu.Lock()
	rec := p.last
	cur := v1alpha1.SourceStatus{Repository: p.repo.Name, URL: p.repo.URL, Ref: p.repo.Ref, Revision: rec.revision, LastPoll: rec.time, NextPoll: next, Interval: p.repo.Interval.String(), LastHandledReconcile: p.handledWake}
	if rec.err != nil {
		cur.LastError = rec.err.Error()
		cur.Revision = p.recorded.Revision // the last revision fetched, kept through errors
	}
	due := !sameRecord(cur, p.recorded) || time.Since(p.recordedAt) > sourceHeartbeat
	p.mu.Unlock()
	defer p.eventHeld(ctx)
	if !due || p.opts.StatusNamespace == "" {
		return
	}
	if err := writeSourceStatus(ctx, p.opts.Client, p.opts.StatusNamespace, cur); err != nil {
		p.log.Error(err, "recording the source status")
		return
	}
	p.mu.Lock()
	prev := p.recorded
	p.recorded, p.recordedAt = cur, time.Now()
	p.mu.Unlock()
	p.reportPollFailure(prev, cur)
}

// sameRecord reports whether two statuses differ only in their poll times.
func sameRecord(a, b v1alpha1.SourceStatus) bool {
	a.LastPoll, a.NextPoll, b.LastPoll, b.NextPoll = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return a == b
}

// writeSourceStatus creates or updates a repository's status ConfigMap.
func writeSourceStatus(ctx context.Context, c client.Client, namespace string, s v1alpha1.SourceStatus) error {
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Name: v1alpha1.SourceStatusName(s.Repository), Namespace: namespace, Labels: map[string]string{v1alpha1.LabelSourceStatus: "true", v1alpha1.LabelManagedBy: "kudod"}},
		Data:       s.Data(),
	}
	if err := applier.ServerSideApply(ctx, c, cm); err != nil {
		return fmt.Errorf("record the status of repository %s: %w", s.Repository, err)
	}
	return nil
}

// heldCommit is a commit whose repository findings hold it (planner.HeldError).
type heldCommit struct {
	commit string
	err    error
}

// eventHeld records a held commit as a Warning event on the repository's status ConfigMap,
// where `kubectl describe` and `kubectl get events` show it next to the last error.
func (p *Poller) eventHeld(ctx context.Context) {
	p.mu.Lock()
	held := p.held
	p.held = nil
	p.mu.Unlock()
	if held == nil || p.opts.StatusNamespace == "" || p.opts.Recorder == nil {
		return
	}
	cm := &corev1.ConfigMap{}
	key := client.ObjectKey{Namespace: p.opts.StatusNamespace, Name: v1alpha1.SourceStatusName(p.repo.Name)}
	if err := p.opts.Client.Get(ctx, key, cm); err != nil {
		// Just written, and not in the cache yet: the event names the object without its UID.
		cm.Name, cm.Namespace = key.Name, key.Namespace
	}
	cm.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
	msg := held.err.Error()
	if len(msg) > 800 {
		msg = strings.ToValidUTF8(msg[:800], "") + "..." // an event's note holds at most 1 kB
	}
	p.opts.Recorder.Eventf(cm, nil, corev1.EventTypeWarning, "CommitHeld", "Plan", "commit %s of repository %s: %s", v1alpha1.ShortRevision(held.commit), p.repo.Name, msg)
}
