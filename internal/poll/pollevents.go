package poll

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kudod-dev/kudod/api/v1alpha1"
)

// reportPollFailure records an event on the repository's status ConfigMap when its polls start
// failing, fail for another reason, or recover (a git server down, say): the source status
// keeps only the last error, and an event reaches `kubectl get events` and event exporters.
// prev is the status recorded before cur.
func (p *Poller) reportPollFailure(prev, cur v1alpha1.SourceStatus) {
	if p.opts.Recorder == nil || cur.LastError == prev.LastError {
		return
	}
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: metav1.ObjectMeta{Namespace: p.opts.StatusNamespace, Name: v1alpha1.SourceStatusName(cur.Repository)},
	}
	if cur.LastError != "" {
		p.opts.Recorder.Eventf(cm, nil, corev1.EventTypeWarning, "PollFailed", "Poll", "repository %s: %s", cur.Repository, cur.LastError)
		return
	}
	p.opts.Recorder.Eventf(cm, nil, corev1.EventTypeNormal, "PollRecovered", "Poll", "repository %s: polled %s again", cur.Repository, v1alpha1.ShortRevision(cur.Revision))
}
